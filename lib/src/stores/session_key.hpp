#pragma once
// Session keys: how they are made and what of them is stored. A key is 32 bytes from the
// operating system's CSPRNG (libsodium's randombytes_buf, which uses getrandom on Linux) in
// URL-safe base64 without padding, 43 characters; the table holds the SHA-256 digest of those
// 43 characters, never the key.

#include <cstddef>
#include <string>
#include <string_view>

namespace pgkit::detail {

/// Random bytes per key.
inline constexpr std::size_t session_key_bytes = 32;
/// Characters per key: 32 bytes in base64 without padding.
inline constexpr std::size_t session_key_length = 43;
/// Bytes of the stored digest.
inline constexpr std::size_t session_digest_bytes = 32;

/// Initialises libsodium once per process. Throws pgkit::error of kind internal when it fails.
void ensure_sodium();

/// Returns a fresh key. ensure_sodium() must have succeeded.
std::string new_session_key();

/// Returns the 32-byte SHA-256 digest of `key`, as stored in session.key_hash.
std::string session_key_digest(std::string_view key);

}  // namespace pgkit::detail
