// What the memory budget (--memory-budget-mb) has done, for /metrics.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "observability/metrics.h"

namespace forklift {

struct MemoryBudgetStats {
  std::uint64_t budget_bytes = 0;
  std::atomic<std::uint64_t> used_bytes{0};     // measured size of the versions loaded now
  std::atomic<std::uint64_t> cold_loads{0};     // versions loaded because a request asked
  std::atomic<std::uint64_t> evictions{0};      // versions unloaded to make room
  std::atomic<std::uint64_t> cold_requests{0};  // requests that waited for a load
  std::atomic<std::uint64_t> cold_timeouts{0};  // of those, answered 503 after the wait bound
  std::atomic<std::uint64_t> cold_refused{0};   // refused at once: too many already waiting
  // How long requests waited for their load: 1 ms to 60 s (a load is slower than a prediction).
  static constexpr std::array<double, 14> kBounds = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,  0.25,
                                                     0.5,   1.0,   2.5,  5.0,   10.0, 30.0, 60.0};
  Histogram cold_start_seconds{kBounds};

  void render(std::string& out) const;
};

}  // namespace forklift
