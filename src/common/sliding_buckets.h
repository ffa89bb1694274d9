// A ring of buckets, each covering an equal slice of wall-clock time: figures over a sliding
// window (the last hour) in memory that does not grow with traffic. A bucket whose slice has
// left the window is emptied and reused. Not thread-safe: the owner locks.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace forklift {

template <class Bucket>
class SlidingBuckets {
 public:
  SlidingBuckets(std::size_t count, std::int64_t window_ms)
      : count_(count),
        width_ms_(std::max<std::int64_t>(1, window_ms / static_cast<std::int64_t>(count))) {}

  // The bucket for `now_ms`; `reset(bucket)` empties it first when it last held an older slice.
  // The ring is allocated on first use, so a window nothing is added to costs nothing.
  template <class Reset>
  Bucket& current(std::int64_t now_ms, Reset reset) {
    if (slots_.empty()) slots_.resize(count_);
    const std::int64_t epoch = now_ms / width_ms_;
    Slot& slot = slots_[static_cast<std::size_t>(epoch) % count_];
    if (slot.epoch != epoch) {
      slot.epoch = epoch;
      reset(slot.bucket);
    }
    return slot.bucket;
  }

  // Calls `visit(bucket)` for each bucket whose slice lies in the window ending at `now_ms`.
  template <class Visit>
  void for_each_in_window(std::int64_t now_ms, Visit visit) const {
    const std::int64_t newest = now_ms / width_ms_;
    for (const Slot& slot : slots_) {
      if (slot.epoch < 0 || slot.epoch > newest ||
          newest - slot.epoch >= static_cast<std::int64_t>(count_)) {
        continue;
      }
      visit(slot.bucket);
    }
  }

 private:
  struct Slot {
    std::int64_t epoch = -1;  // now_ms / width_ms_ of the slice it holds
    Bucket bucket{};
  };
  const std::size_t count_;
  const std::int64_t width_ms_;
  std::vector<Slot> slots_;
};

}  // namespace forklift
