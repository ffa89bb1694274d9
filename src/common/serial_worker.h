// One thread that runs tasks one at a time in the order given: work that must not hold up an
// event loop (the admin API's changes, which may load and self-test models for minutes).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace forklift {

class SerialWorker {
 public:
  // At most `max_pending` tasks wait; submit refuses more. `on_start` runs first on the thread
  // (e.g. to lower its priority).
  explicit SerialWorker(std::size_t max_pending, std::function<void()> on_start = {});
  // Finishes the running task; the waiting ones are destroyed without running.
  ~SerialWorker();
  SerialWorker(const SerialWorker&) = delete;
  SerialWorker& operator=(const SerialWorker&) = delete;

  // False (and `task` destroyed unrun) when max_pending tasks already wait, or the worker is
  // being destroyed.
  bool submit(std::function<void()> task);

 private:
  void run();

  const std::size_t max_pending_;
  std::function<void()> on_start_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> pending_;  // guarded by mu_
  bool stop_ = false;                          // guarded by mu_
  std::thread thread_;                         // last: starts after the members it uses
};

}  // namespace forklift
