#include "core/batching_model.h"

#include <condition_variable>
#include <deque>
#include <iterator>
#include <mutex>
#include <thread>

#include "common/thread_priority.h"
#include "common/value_bytes.h"

namespace forklift {
namespace {

using Clock = std::chrono::steady_clock;

struct Request {
  const Batch* batch;
  PredictDone done;
  Clock::time_point queued;
  std::size_t bytes;  // batch_bytes(*batch), counted against max_queue_bytes
};

}  // namespace

struct BatchingModel::State {
  State(std::shared_ptr<const Model> m, BatchingOptions o) : inner(std::move(m)), options(o) {}

  const std::shared_ptr<const Model> inner;
  const BatchingOptions options;
  std::mutex mu;
  std::condition_variable arrived;
  std::deque<Request> queue;  // guarded by mu, as are the fields below
  std::size_t queued_rows = 0;
  std::size_t queued_bytes = 0;
  bool stop = false;
  std::shared_ptr<VersionMetrics> metrics;
  std::vector<std::thread> threads;
};

std::chrono::system_clock::time_point& current_runtime_call_start() {
  thread_local std::chrono::system_clock::time_point start{};
  return start;
}

namespace {

using State = BatchingModel::State;

// One runtime call for the requests in `taken` (`rows` rows in all), then each request's share.
void execute(const State& s, std::vector<Request>& taken, std::size_t rows,
             VersionMetrics* metrics) {
  const auto started = Clock::now();
  // For the requests' traces: their queue wait ends here (read by their callbacks, below, on
  // this thread).
  current_runtime_call_start() = std::chrono::system_clock::now();
  if (metrics) {
    metrics->batching.rows.observe(static_cast<double>(rows));
    metrics->batching.requests.observe(static_cast<double>(taken.size()));
    for (const Request& r : taken) {
      metrics->batching.queue_seconds.observe(
          std::chrono::duration<double>(started - r.queued).count());
    }
  }
  std::vector<Value> outputs;
  outputs.reserve(rows);
  // `inner` is guarded (guarded_model.h): a Status, never an exception, and one output per row.
  Status status;
  if (taken.size() == 1) {
    status = s.inner->predict(*taken.front().batch, outputs);
  } else {
    Batch combined(taken.front().batch->schema());
    combined.reserve_rows(rows);
    for (const Request& r : taken) combined.append_rows(*r.batch);
    status = s.inner->predict(combined, outputs);
  }
  std::size_t offset = 0;
  for (Request& r : taken) {
    const std::size_t n = r.batch->rows();
    std::vector<Value> mine;
    if (status.ok()) {
      const auto first = outputs.begin() + static_cast<std::ptrdiff_t>(offset);
      mine.assign(std::make_move_iterator(first),
                  std::make_move_iterator(first + static_cast<std::ptrdiff_t>(n)));
    }
    offset += n;
    r.done(status, std::move(mine));
  }
  current_runtime_call_start() = {};
}

void run(const std::shared_ptr<State>& state) {
  // Started by the (possibly idle-priority) loader, these threads answer requests.
  restore_this_thread_priority();
  State& s = *state;
  const std::size_t max_rows = s.options.max_batch_size;
  std::vector<Request> taken;
  std::unique_lock lock(s.mu);
  for (;;) {
    s.arrived.wait(lock, [&] { return s.stop || !s.queue.empty(); });
    if (s.stop) break;
    // Give others until the oldest request's delay is up to join it, unless the batch is full.
    const auto deadline = s.queue.front().queued + s.options.max_queue_delay;
    while (!s.stop && !s.queue.empty() && s.queued_rows < max_rows) {
      if (s.arrived.wait_until(lock, deadline) == std::cv_status::timeout) break;
    }
    if (s.queue.empty()) continue;  // another thread took them
    std::size_t rows = 0;
    while (!s.queue.empty()) {
      const std::size_t n = s.queue.front().batch->rows();
      if (!taken.empty() && rows + n > max_rows) break;
      rows += n;
      s.queued_bytes -= s.queue.front().bytes;
      taken.push_back(std::move(s.queue.front()));
      s.queue.pop_front();
    }
    s.queued_rows -= rows;
    const std::shared_ptr<VersionMetrics> metrics = s.metrics;
    lock.unlock();
    execute(s, taken, rows, metrics.get());
    taken.clear();  // before taking the lock: a callback's captures may be heavy to destroy
    lock.lock();
  }
  // Stopping: whatever is still queued is refused (its callers hold the version, so normally
  // nothing is).
  std::deque<Request> left = std::move(s.queue);
  s.queue.clear();
  s.queued_bytes = 0;
  lock.unlock();
  for (Request& r : left) r.done(Unavailable("the model version is being unloaded"), {});
}

}  // namespace

BatchingModel::BatchingModel(std::shared_ptr<const Model> inner, BatchingOptions options)
    : state_(std::make_shared<State>(std::move(inner), options)) {
  for (std::size_t i = 0; i < std::max<std::size_t>(options.threads, 1); ++i) {
    state_->threads.emplace_back([state = state_] { run(state); });
  }
}

BatchingModel::~BatchingModel() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(state_->mu);
    state_->stop = true;
    threads = std::move(state_->threads);
  }
  state_->arrived.notify_all();
  for (std::thread& t : threads) {
    // The last reference to a version may be dropped by a callback on one of its own batching
    // threads; that thread cannot join itself, and finishes on its own (it holds the state).
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();
    } else {
      t.join();
    }
  }
}

std::size_t BatchingModel::queued_requests() const {
  std::lock_guard lock(state_->mu);
  return state_->queue.size();
}

void BatchingModel::submit(const Batch& batch, PredictDone done) const {
  const std::size_t bytes = batch_bytes(batch);
  {
    std::unique_lock lock(state_->mu);
    const bool full_count = state_->queue.size() >= state_->options.max_queue_size;
    // A request larger than the whole byte bound is still taken when nothing waits: it can
    // only ever be predicted alone, and its body was already within --max-body-bytes.
    const bool full_bytes =
        !state_->queue.empty() && state_->queued_bytes + bytes > state_->options.max_queue_bytes;
    if (!state_->stop && (full_count || full_bytes)) {
      if (state_->metrics) state_->metrics->shed.fetch_add(1, std::memory_order_relaxed);
      lock.unlock();
      return done(Unavailable(full_count ? "the version's batching queue is full (" +
                                               std::to_string(state_->options.max_queue_size) +
                                               " requests waiting); retry later"
                                         : "the version's batching queue is full (" +
                                               std::to_string(state_->options.max_queue_bytes) +
                                               " bytes of rows waiting); retry later"),
                  {});
    }
    if (!state_->stop) {
      state_->queued_bytes += bytes;
      state_->queue.push_back(Request{&batch, std::move(done), Clock::now(), bytes});
      state_->queued_rows += batch.rows();
      state_->arrived.notify_one();
      return;
    }
  }
  done(Unavailable("the model version is being unloaded"), {});
}

Status BatchingModel::predict(const Batch& batch, std::vector<Value>& outputs) const {
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Status status;
    std::vector<Value> outputs;
  } wait;
  submit(batch, [&wait](Status status, std::vector<Value> out) {
    std::lock_guard lock(wait.mu);
    wait.status = std::move(status);
    wait.outputs = std::move(out);
    wait.done = true;
    wait.cv.notify_one();  // under the lock: `wait` lives until the waiter has seen `done`
  });
  std::unique_lock lock(wait.mu);
  wait.cv.wait(lock, [&] { return wait.done; });
  if (!wait.status.ok()) return wait.status;
  for (Value& v : wait.outputs) outputs.push_back(std::move(v));
  return Status::Ok();
}

void BatchingModel::set_metrics(std::shared_ptr<VersionMetrics> metrics) const {
  std::lock_guard lock(state_->mu);
  state_->metrics = std::move(metrics);
}

}  // namespace forklift
