#include "core/suggest.hpp"

#include <algorithm>

namespace pgkit {
namespace {

// A word longer than this is not a typo of a name anyone types; comparing it would only cost
// time (a 20 KB word against 20 000 names).
constexpr std::size_t longest_word = 128;

// Returns the edit distance of `a` and `b` when it is at most `limit`, else limit + 1. Stops
// as soon as a whole row exceeds `limit`: no later row can come back under it.
std::size_t edit_distance(std::string_view a, std::string_view b, std::size_t limit) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    std::size_t row_min = row[0];
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
      row_min = std::min(row_min, row[j]);
    }
    if (row_min > limit)
      return limit + 1;
  }
  return std::min(row[b.size()], limit + 1);
}

}  // namespace

std::optional<std::string> nearest_word(std::string_view word,
                                        const std::vector<std::string>& candidates) {
  if (word.size() > longest_word)
    return std::nullopt;
  std::size_t limit = std::max<std::size_t>(2, word.size() / 3);
  std::optional<std::string> best;
  for (const auto& candidate : candidates) {
    // The length difference alone is a lower bound of the distance.
    auto length_gap = candidate.size() > word.size() ? candidate.size() - word.size()
                                                     : word.size() - candidate.size();
    if (length_gap > limit)
      continue;
    auto distance = edit_distance(word, candidate, limit);
    if (distance <= limit) {
      best = candidate;
      if (distance == 0)
        break;
      // Only a strictly closer candidate may replace it, as before: the first of equals wins.
      limit = distance - 1;
    }
  }
  return best;
}

std::string join_words(const std::vector<std::string>& words, std::string_view separator) {
  std::string text;
  for (const auto& word : words) {
    if (&word != &words.front())
      text += separator;
    text += word;
  }
  return text;
}

}  // namespace pgkit
