#pragma once
// The listener's reconnect schedule, apart so that it can be tested without a server.

#include <algorithm>
#include <chrono>

namespace pgkit::detail {

/// Returns the delay before the next reconnect attempt after `failed_attempts` (>= 1) failed
/// ones: `initial` doubled per further failure, capped at `maximum`, then scaled into
/// [delay / 2, delay] by `unit_random` in [0, 1). The jitter keeps many listeners that lost the
/// same server from reconnecting in lockstep; the lower half bound keeps the backoff real.
inline std::chrono::milliseconds reconnect_delay(unsigned failed_attempts,
                                                 std::chrono::milliseconds initial,
                                                 std::chrono::milliseconds maximum,
                                                 double unit_random) {
  auto delay = std::max(initial, std::chrono::milliseconds{1});
  for (unsigned i = 1; i < failed_attempts && delay < maximum; ++i)
    delay *= 2;
  delay = std::min(delay, maximum);
  auto half = delay.count() / 2;
  auto jitter = static_cast<long long>(static_cast<double>(delay.count() - half) *
                                       std::clamp(unit_random, 0.0, 1.0));
  return std::chrono::milliseconds{half + std::min<long long>(jitter, delay.count() - half)};
}

}  // namespace pgkit::detail
