#include "common/serial_worker.h"

#include <utility>

namespace forklift {

SerialWorker::SerialWorker(std::size_t max_pending, std::function<void()> on_start)
    : max_pending_(max_pending), on_start_(std::move(on_start)), thread_([this] { run(); }) {}

SerialWorker::~SerialWorker() {
  std::deque<std::function<void()>> unrun;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    unrun.swap(pending_);
  }
  cv_.notify_all();
  thread_.join();
  // `unrun` is destroyed here, outside the lock: a task's destructor may do work of its own.
}

bool SerialWorker::submit(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (stop_ || pending_.size() >= max_pending_) return false;
    pending_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

void SerialWorker::run() {
  if (on_start_) on_start_();
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !pending_.empty(); });
      if (stop_) return;
      task = std::move(pending_.front());
      pending_.pop_front();
    }
    task();
  }
}

}  // namespace forklift
