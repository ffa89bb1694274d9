// Retrying a call that failed for a reason that may pass (Unavailable, DeadlineExceeded): the
// store went away, throttled, or timed out. Exponential backoff with full jitter (each wait drawn
// from 0 to base x 2^(n-1), at most `max_wait`), so many callers retrying one store do not come
// back in lockstep.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <random>

#include "forklift/status.h"

namespace forklift {

struct RetryPolicy {
  int attempts = 4;  // in all, the first one included
  std::chrono::milliseconds base{200};
  std::chrono::milliseconds max_wait{5000};
};

inline bool transient(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
}

// Calls `fn` until it succeeds, fails for good, or the attempts run out. `sleep(d)` waits between
// attempts and returns false to give up at once (a shutdown); `on_retry` counts retries.
template <class Fn>
Status retry_transient(const RetryPolicy& policy, Fn&& fn,
                       const std::function<bool(std::chrono::milliseconds)>& sleep,
                       const std::function<void()>& on_retry = {}) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  Status s;
  for (int attempt = 0; attempt < std::max(1, policy.attempts); ++attempt) {
    if (attempt > 0) {
      const auto cap = std::min<std::int64_t>(policy.max_wait.count(),
                                              policy.base.count() << std::min(attempt - 1, 20));
      std::uniform_int_distribution<std::int64_t> pick(0, std::max<std::int64_t>(1, cap));
      if (!sleep(std::chrono::milliseconds(pick(rng)))) return Unavailable("stopped");
      if (on_retry) on_retry();
    }
    s = fn();
    if (s.ok() || !transient(s)) return s;
  }
  return s;
}

}  // namespace forklift
