#include "common/thread_priority.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

namespace forklift {
namespace {

int base_nice() {
  return ::getpriority(PRIO_PROCESS, 0);
}

struct Observed {
  int policy = -1;
  int nice = -100;
};

// Lowers a fresh thread (so the test's own thread keeps its priority) and reads back what the
// kernel holds for it.
Observed lowered_thread(BackgroundPriority mode, int nice_value) {
  set_background_priority(mode);
  Observed seen;
  std::thread([&] {
    lower_this_thread_priority(nice_value);
    seen.policy = ::sched_getscheduler(0);
    seen.nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));
  }).join();
  set_background_priority(BackgroundPriority::kIdle);
  return seen;
}

TEST(BackgroundPriority, ParsesTheThreeModesAndNothingElse) {
  EXPECT_EQ(parse_background_priority("idle"), BackgroundPriority::kIdle);
  EXPECT_EQ(parse_background_priority("nice"), BackgroundPriority::kNice);
  EXPECT_EQ(parse_background_priority("normal"), BackgroundPriority::kNormal);
  EXPECT_FALSE(parse_background_priority("IDLE").has_value());
  EXPECT_FALSE(parse_background_priority("").has_value());
}

TEST(BackgroundPriority, IdleUsesSchedIdle) {
  const Observed seen = lowered_thread(BackgroundPriority::kIdle, 10);
  EXPECT_EQ(seen.policy, SCHED_IDLE);
}

TEST(BackgroundPriority, NiceSetsTheThreadsNiceValueOnly) {
  const Observed seen = lowered_thread(BackgroundPriority::kNice, 10);
  EXPECT_EQ(seen.policy, SCHED_OTHER);
  // Unprivileged, a thread cannot go below the nice value the test runs at.
  EXPECT_EQ(seen.nice, std::max(10, base_nice()));
}

TEST(BackgroundPriority, NormalLeavesTheThreadAlone) {
  const Observed seen = lowered_thread(BackgroundPriority::kNormal, 10);
  EXPECT_EQ(seen.policy, SCHED_OTHER);
  EXPECT_EQ(seen.nice, base_nice());
}

TEST(BackgroundPriority, RestoreUndoesIdle) {
  set_background_priority(BackgroundPriority::kIdle);
  int policy = -1;
  std::thread([&] {
    lower_this_thread_priority(10);
    restore_this_thread_priority();
    policy = ::sched_getscheduler(0);
  }).join();
  EXPECT_EQ(policy, SCHED_OTHER);
}

}  // namespace
}  // namespace forklift
