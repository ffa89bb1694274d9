// A cheap per-thread coin for sampling (request logs, prediction events, shadows).
#pragma once

#include <cstdint>

namespace forklift {

// True with probability `rate` (0: never, 1: always). Lock-free: a xorshift generator per thread.
inline bool sampled(double rate) {
  if (rate <= 0) return false;
  if (rate >= 1) return true;
  thread_local std::uint64_t state =
      0x9E3779B97F4A7C15ull ^ reinterpret_cast<std::uintptr_t>(&state);
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return static_cast<double>(state >> 11) * 0x1.0p-53 < rate;
}

}  // namespace forklift
