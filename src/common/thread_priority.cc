#include "common/thread_priority.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace forklift {
namespace {

std::atomic<BackgroundPriority> g_background{BackgroundPriority::kIdle};

void set_this_thread_nice(int nice_value) {
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  (void)::setpriority(PRIO_PROCESS, tid, nice_value);
}

}  // namespace

std::optional<BackgroundPriority> parse_background_priority(std::string_view name) {
  if (name == "idle") return BackgroundPriority::kIdle;
  if (name == "nice") return BackgroundPriority::kNice;
  if (name == "normal") return BackgroundPriority::kNormal;
  return std::nullopt;
}

void set_background_priority(BackgroundPriority priority) {
  g_background.store(priority, std::memory_order_relaxed);
}

void lower_this_thread_priority(int nice_value) {
  switch (g_background.load(std::memory_order_relaxed)) {
    case BackgroundPriority::kNormal:
      return;
    case BackgroundPriority::kNice:
      set_this_thread_nice(nice_value);
      return;
    case BackgroundPriority::kIdle: {
      // SCHED_IDLE: a waking serving thread preempts the background thread at once. (A nice
      // value alone still gives it CFS time slices, which showed as millisecond stalls in other
      // models' p99 while a large model loaded.)
      sched_param param{};
      if (::pthread_setschedparam(::pthread_self(), SCHED_IDLE, &param) == 0) return;
      set_this_thread_nice(nice_value);  // where SCHED_IDLE is refused
      return;
    }
  }
}

void restore_this_thread_priority() {
  sched_param param{};
  (void)::pthread_setschedparam(::pthread_self(), SCHED_OTHER, &param);
  set_this_thread_nice(0);
}

}  // namespace forklift
