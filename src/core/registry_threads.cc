#include "core/registry_threads.h"

#include <map>

#include "common/thread_priority.h"
#include "observability/log.h"

namespace forklift {

std::unique_ptr<PeriodicThread> start_repository_poller(ModelRegistry& registry,
                                                        double poll_seconds,
                                                        std::function<void()> before_first) {
  using Clock = std::chrono::steady_clock;
  const auto poll =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(poll_seconds));
  auto next_scan = std::make_shared<Clock::time_point>();
  const auto first = [&registry, next_scan, poll, before_first] {
    if (before_first) before_first();
    registry.sync();
    {
      // Scoped: a snapshot held for the life of the thread would keep every version loaded at
      // start in memory (and a python version's worker processes running) after it retires.
      const auto snap = registry.snapshot();
      log::info("repository_loaded", {{"models", static_cast<std::int64_t>(snap->models.size())},
                                      {"ready", snap->ready()}});
    }
    lower_this_thread_priority(10);  // later loads yield the CPU to the serving threads
    *next_scan = Clock::now() + poll;
  };
  // Every 200 ms: retired versions are freed soon after their last request.
  const auto tick = [&registry, next_scan, poll, poll_seconds] {
    if (poll_seconds > 0 && Clock::now() >= *next_scan) {
      registry.sync();
      *next_scan = Clock::now() + poll;
    }
    registry.collect_retired();
  };
  return std::make_unique<PeriodicThread>(std::chrono::milliseconds(200), tick, first);
}

std::unique_ptr<PeriodicThread> start_state_follower(ModelRegistry& registry, StateStore& store) {
  auto retry = std::make_shared<std::map<std::string, ModelControl>>();
  const auto tick = [&registry, &store, retry] {
    // Waits up to a second for changes (the destructor interrupts the wait).
    for (auto& [id, control] : store.wait_for_changes(std::chrono::seconds(1))) {
      (*retry)[id] = std::move(control);  // a newer change replaces one still waiting
    }
    for (auto it = retry->begin(); it != retry->end();) {
      it = registry.apply_remote(it->first, it->second).ok() ? retry->erase(it) : std::next(it);
    }
    registry.collect_retired();
  };
  return std::make_unique<PeriodicThread>(std::chrono::milliseconds(0), tick, nullptr,
                                          [&store] { store.interrupt(); });
}

}  // namespace forklift
