#include "common/thread_priority.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace forklift {

void lower_this_thread_priority(int nice_value) {
  // SCHED_IDLE: the thread runs only on CPU time nothing else wants, and a waking serving thread
  // preempts it at once. (A nice value alone still gives it CFS time slices, which showed as
  // millisecond stalls in other models' p99 while a large model loaded.)
  sched_param param{};
  if (::pthread_setschedparam(::pthread_self(), SCHED_IDLE, &param) == 0) return;
  // Fallback where SCHED_IDLE is refused: a nice value for this thread alone.
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  (void)::setpriority(PRIO_PROCESS, tid, nice_value);
}

void restore_this_thread_priority() {
  sched_param param{};
  (void)::pthread_setschedparam(::pthread_self(), SCHED_OTHER, &param);
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  (void)::setpriority(PRIO_PROCESS, tid, 0);
}

}  // namespace forklift
