// Session keys without a database: their format, their randomness, their digest, and which
// strings the store treats as keys at all.

#include <doctest/doctest.h>

#include <array>
#include <bitset>
#include <set>
#include <string>

#include "pgkit/session.hpp"
#include "stores/session_key.hpp"

namespace {

// Decodes URL-safe base64 without padding; returns "" on a character outside the alphabet.
std::string decode(const std::string& text) {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : text) {
    auto value = alphabet.find(c);
    if (value == std::string::npos)
      return "";
    buffer = (buffer << 6U) | static_cast<unsigned>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> static_cast<unsigned>(bits)) & 0xFFU);
    }
  }
  return out;
}

std::string hex(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (char byte : bytes) {
    auto c = static_cast<unsigned char>(byte);
    out += digits[c >> 4U];
    out += digits[c & 0xFU];
  }
  return out;
}

}  // namespace

TEST_CASE("session keys") {
  pgkit::detail::ensure_sodium();

  SUBCASE("a key is 32 random bytes as 43 URL-safe base64 characters without padding") {
    for (int i = 0; i < 100; ++i) {
      auto key = pgkit::detail::new_session_key();
      CHECK(key.size() == 43);
      CHECK(pgkit::is_well_formed_session_key(key));
      CHECK(key.find('=') == std::string::npos);
      CHECK(decode(key).size() == 32);
    }
  }

  SUBCASE("keys look uniformly random: all distinct, about half of their bits set") {
    constexpr int k_keys = 8000;
    std::set<std::string> keys;
    std::size_t ones = 0;
    std::array<int, 256> first_byte{};
    for (int i = 0; i < k_keys; ++i) {
      auto key = pgkit::detail::new_session_key();
      keys.insert(key);
      auto bytes = decode(key);
      for (char c : bytes)
        ones += std::bitset<8>{static_cast<unsigned char>(c)}.count();
      ++first_byte[static_cast<unsigned char>(bytes[0])];
    }
    CHECK(keys.size() == k_keys);
    // 8000 × 256 bits: mean 1 024 000, standard deviation 716; allow ten deviations.
    CHECK(ones > 1024000 - 7160);
    CHECK(ones < 1024000 + 7160);
    // Every value of the first byte shows up: about 31 times each; that one is missing by
    // chance has a probability of about 1e-11.
    int missing = 0;
    for (int count : first_byte)
      missing += count == 0 ? 1 : 0;
    CHECK(missing == 0);
  }

  SUBCASE("the stored digest is SHA-256 of the key's characters") {
    CHECK(hex(pgkit::detail::session_key_digest("abc")) ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    auto key = pgkit::detail::new_session_key();
    CHECK(pgkit::detail::session_key_digest(key).size() == 32);
    CHECK(pgkit::detail::session_key_digest(key) == pgkit::detail::session_key_digest(key));
    CHECK(pgkit::detail::session_key_digest(key).find(key) == std::string::npos);
  }

  SUBCASE("only 43 characters of the URL-safe alphabet are a key") {
    CHECK(pgkit::is_well_formed_session_key(std::string(43, 'A')));
    CHECK(pgkit::is_well_formed_session_key(std::string(21, '-') + std::string(22, '_')));
    CHECK_FALSE(pgkit::is_well_formed_session_key(""));
    CHECK_FALSE(pgkit::is_well_formed_session_key(std::string(42, 'A')));
    CHECK_FALSE(pgkit::is_well_formed_session_key(std::string(44, 'A')));
    CHECK_FALSE(pgkit::is_well_formed_session_key(std::string(42, 'A') + "+"));
    CHECK_FALSE(pgkit::is_well_formed_session_key(std::string(42, 'A') + "/"));
    CHECK_FALSE(pgkit::is_well_formed_session_key(std::string(42, 'A') + "="));
    CHECK_FALSE(pgkit::is_well_formed_session_key(std::string(42, 'A') + '\0'));
    CHECK_FALSE(pgkit::is_well_formed_session_key(std::string(42, 'A') + "\xc3"));
  }
}
