#pragma once

#include <optional>
#include <string_view>

namespace forklift {

// How far background work (loading and self-testing models, admin changes, training jobs, trace
// export) steps back from the serving threads. Process-wide; set once at start-up.
//  - kIdle (the default): SCHED_IDLE, so that background work runs only on CPU time nothing else
//    wants. Serving is best protected, but on a saturated machine background work nearly stops.
//  - kNice: a nice value (10; 19 for training jobs): background work gets a small but steady share
//    of a busy CPU, at some cost in serving tail latency.
//  - kNormal: no lowering at all, for machines shared by many processes of equal standing (a
//    test suite running many servers at once).
enum class BackgroundPriority { kIdle, kNice, kNormal };

// "idle", "nice" or "normal"; nullopt for anything else.
std::optional<BackgroundPriority> parse_background_priority(std::string_view name);

// Sets the mode for threads lowered from now on. Call before starting the threads.
void set_background_priority(BackgroundPriority priority);

// Lowers the calling thread's CPU priority as the process-wide mode says (SCHED_IDLE, falling
// back to `nice_value` where that is refused; or `nice_value`; or not at all), so that work such
// as loading and self-testing a large model yields the CPU to the serving threads. Best effort:
// a failure leaves the priority as it was.
void lower_this_thread_priority(int nice_value);

// Gives the calling thread normal priority (SCHED_OTHER, nice 0): for threads that serve
// requests but are started from a lowered one (they inherit its policy). Best effort.
void restore_this_thread_priority();

}  // namespace forklift
