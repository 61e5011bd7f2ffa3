#pragma once
/// "Did you mean ...?": the nearest known word to a mistyped one, and lists of known words, for
/// error hints.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgkit {

/// Returns the candidate closest to `word` by edit distance when it is close enough to be a
/// likely typo (at most max(2, |word| / 3) edits), else std::nullopt; the first of equally close
/// candidates wins. A word over 128 bytes gets no suggestion, so that the cost stays bounded
/// (candidates of a too different length are skipped, rows stop past the limit).
std::optional<std::string> nearest_word(std::string_view word,
                                        const std::vector<std::string>& candidates);

/// Returns `words` separated by `separator` ("main, replica"); "" for none.
std::string join_words(const std::vector<std::string>& words, std::string_view separator = ", ");

}  // namespace pgkit
