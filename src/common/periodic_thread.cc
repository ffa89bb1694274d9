#include "common/periodic_thread.h"

namespace forklift {

PeriodicThread::PeriodicThread(std::chrono::milliseconds period, std::function<void()> tick,
                               std::function<void()> first, std::function<void()> interrupt)
    : period_(period),
      tick_(std::move(tick)),
      first_(std::move(first)),
      interrupt_(std::move(interrupt)),
      thread_([this] { run(); }) {}

PeriodicThread::~PeriodicThread() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (interrupt_) interrupt_();
  thread_.join();
}

bool PeriodicThread::stopping() const {
  std::lock_guard lock(mu_);
  return stop_;
}

void PeriodicThread::run() {
  if (first_) first_();
  auto next = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  for (;;) {
    next += period_;
    if (wake_.wait_until(lock, next, [&] { return stop_; })) return;
    lock.unlock();
    tick_();
    lock.lock();
    // A tick longer than the period is not followed by a burst of catch-up ticks.
    next = std::max(next, std::chrono::steady_clock::now() - period_);
  }
}

}  // namespace forklift
