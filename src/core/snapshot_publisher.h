// Publishes immutable snapshots for lock-free readers (Envoy's thread-local slots follow the same
// idea), and keeps what leaves them so that its last reference is dropped by the publisher's side.
//
// Readers keep a per-thread weak copy of the snapshot pointer and refresh it, under a mutex, only
// when the generation moved. Neither std::atomic<std::shared_ptr> (libstdc++ 12 makes a futex
// call per load: measured two per request) nor a mutex per read (the loader thread runs at idle
// priority; holding a lock readers need turns into millisecond stalls: measured) will do.
//
// Retired snapshots, and objects the owner retires (versions that left), are kept until
// collect_retired() finds nobody else holds them: a serving thread never frees a model (a latency
// spike) or a snapshot allocated by the loader (its malloc arena lock: measured stalls).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace forklift {

namespace detail {
// Unique across publishers, so a thread's cached snapshot can never be mistaken for another
// publisher's (even one created at the same address).
inline std::atomic<std::uint64_t> g_next_snapshot_generation{1};
}  // namespace detail

template <class Snapshot>
class SnapshotPublisher {
 public:
  explicit SnapshotPublisher(std::shared_ptr<const Snapshot> first)
      : current_(std::move(first)), generation_(detail::g_next_snapshot_generation.fetch_add(1)) {}

  // The current snapshot. Lock-free unless a new one was published since this thread's last call.
  std::shared_ptr<const Snapshot> snapshot() const {
    // A thread's cached snapshot is weak: a thread that read once and never again (the loader at
    // start-up, an idle event loop) must not keep it, and what only it holds, alive.
    struct Cached {
      const SnapshotPublisher* owner = nullptr;
      std::uint64_t generation = 0;
      std::weak_ptr<const Snapshot> snapshot;
    };
    thread_local Cached cache;
    const std::uint64_t generation = generation_.load(std::memory_order_acquire);
    if (cache.owner == this && cache.generation == generation) {
      // One atomic operation, as copying a shared_ptr would be. Empty only when the snapshot was
      // replaced and freed since: then the generation moved too.
      if (auto current = cache.snapshot.lock()) return current;
    }
    std::lock_guard lock(current_mu_);
    cache.snapshot = current_;
    cache.owner = this;
    cache.generation = generation_.load(std::memory_order_relaxed);
    return current_;
  }

  // Replaces the snapshot; returns the previous one (also kept for collect_retired).
  std::shared_ptr<const Snapshot> publish(std::shared_ptr<const Snapshot> next) {
    std::shared_ptr<const Snapshot> previous;
    {
      std::lock_guard lock(current_mu_);  // a pointer swap: readers rarely wait, never long
      previous = std::exchange(current_, std::move(next));
      generation_.store(detail::g_next_snapshot_generation.fetch_add(1), std::memory_order_release);
    }
    std::lock_guard lock(retired_mu_);
    retired_snapshots_.push_back(previous);
    return previous;
  }

  // Keeps `object` until nobody else holds it.
  void retire(std::shared_ptr<const void> object) {
    std::lock_guard lock(retired_mu_);
    retired_.push_back(std::move(object));
  }

  // Frees, on the calling thread, what was retired and is held by nobody else any more.
  void collect_retired() {
    std::vector<std::shared_ptr<const Snapshot>> snapshots;
    {
      std::lock_guard lock(retired_mu_);
      // Snapshots first: freeing one may leave a retired object with no other holder.
      for (auto& s : retired_snapshots_) {
        if (s.use_count() == 1) snapshots.push_back(std::move(s));
      }
      std::erase(retired_snapshots_, nullptr);
    }
    snapshots.clear();
    std::vector<std::shared_ptr<const void>> objects;
    {
      std::lock_guard lock(retired_mu_);
      for (auto& o : retired_) {
        if (o.use_count() == 1) objects.push_back(std::move(o));
      }
      std::erase(retired_, nullptr);
    }
    objects.clear();  // destroyed here, outside the lock
  }

 private:
  mutable std::mutex current_mu_;
  std::shared_ptr<const Snapshot> current_;  // guarded by current_mu_
  std::atomic<std::uint64_t> generation_;    // changes with every publish
  // Never held during a load, so collecting never waits for one.
  std::mutex retired_mu_;
  std::vector<std::shared_ptr<const Snapshot>> retired_snapshots_;  // guarded by retired_mu_
  std::vector<std::shared_ptr<const void>> retired_;                // guarded by retired_mu_
};

}  // namespace forklift
