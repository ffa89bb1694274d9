#pragma once

namespace forklift {

// Lowers the calling thread's CPU priority (SCHED_IDLE, else a nice value), so that work such as
// loading and self-testing a large model yields the CPU to the serving threads. Best effort:
// a failure leaves the priority as it was.
void lower_this_thread_priority(int nice_value);

// Gives the calling thread normal priority (SCHED_OTHER, nice 0): for threads that serve
// requests but are started from a lowered one (they inherit its policy). Best effort.
void restore_this_thread_priority();

}  // namespace forklift
