#include "common/serial_worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <vector>

namespace forklift {
namespace {

TEST(SerialWorker, RunsTasksInOrderOneAtATime) {
  std::vector<int> order;
  std::promise<void> done;
  {
    SerialWorker worker(16);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(worker.submit([&order, i] { order.push_back(i); }));
    ASSERT_TRUE(worker.submit([&done] { done.set_value(); }));
    done.get_future().wait();
  }
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

// The admin API's changes wait here: bounded, so a flood of changes is refused, not queued.
TEST(SerialWorker, RefusesBeyondMaxPendingAndDropsWhatWaitsAtDestruction) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  std::atomic<int> ran{0};
  {
    SerialWorker worker(2, [&] { ran += 100; });  // on_start runs first, once
    ASSERT_TRUE(worker.submit([&, released] {
      started.set_value();
      released.wait();
      ++ran;
    }));
    started.get_future().wait();  // the first task runs; two may wait behind it
    EXPECT_TRUE(worker.submit([&] { ++ran; }));
    EXPECT_TRUE(worker.submit([&] { ++ran; }));
    EXPECT_FALSE(worker.submit([&] { ++ran; }));
    release.set_value();
  }
  // The running task finished; the two waiting ones may or may not have run before the worker
  // stopped, the refused one never did.
  EXPECT_GE(ran.load(), 101);
  EXPECT_LE(ran.load(), 103);
}

}  // namespace
}  // namespace forklift
