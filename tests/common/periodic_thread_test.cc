#include "common/periodic_thread.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace forklift {
namespace {

TEST(PeriodicThread, RunsFirstThenTicksUntilDestroyed) {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<char> order;
  {
    PeriodicThread thread(
        std::chrono::milliseconds(1),
        [&] {
          std::lock_guard lock(mu);
          order.push_back('t');
          changed.notify_all();
        },
        [&] {
          std::lock_guard lock(mu);
          order.push_back('f');
        });
    std::unique_lock lock(mu);
    changed.wait(lock, [&] { return order.size() >= 3; });  // bounded by events, not time
  }
  const std::size_t after_stop = order.size();
  EXPECT_EQ(order.front(), 'f');
  EXPECT_EQ(std::count(order.begin(), order.end(), 'f'), 1);
  // Destroyed: no tick runs any more.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(order.size(), after_stop);
}

TEST(PeriodicThread, TheDestructorInterruptsATickThatWaits) {
  std::mutex mu;
  std::condition_variable cv;
  bool interrupted = false;
  std::atomic<int> ticks{0};
  {
    PeriodicThread thread(
        std::chrono::milliseconds(0),
        [&] {
          ++ticks;
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return interrupted; });  // as a database wait would
        },
        nullptr,
        [&] {
          std::lock_guard lock(mu);
          interrupted = true;
          cv.notify_all();
        });
    while (ticks.load() == 0) std::this_thread::yield();
  }  // would hang here without the interrupt
  EXPECT_TRUE(interrupted);
}

}  // namespace
}  // namespace forklift
