// A background thread that runs a task every `period` until it is destroyed: the repository
// poller, the state follower and the metrics sampler are each one of these.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace forklift {

class PeriodicThread {
 public:
  // `first`, if set, runs once on the thread before the first tick. `interrupt`, if set, is
  // called by the destructor to cut short a tick that blocks on something else (a database
  // wait). A period of zero runs the ticks back to back (a tick that waits itself).
  PeriodicThread(std::chrono::milliseconds period, std::function<void()> tick,
                 std::function<void()> first = {}, std::function<void()> interrupt = {});
  ~PeriodicThread();  // stops and joins: the tick running now finishes first
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  // Whether the destructor has asked the thread to stop (for a tick that loops inside).
  bool stopping() const;

 private:
  void run();

  const std::chrono::milliseconds period_;
  const std::function<void()> tick_;
  const std::function<void()> first_;
  const std::function<void()> interrupt_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;   // guarded by mu_
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace forklift
