#include "core/deadline_model.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/thread_priority.h"

namespace forklift {
namespace {

// One call: its own copy of the rows (and of the schema they point to), so that a caller that
// gave up can return while the runtime still reads them.
struct Call {
  Call(const std::shared_ptr<const Schema>& s, const Batch& rows) : schema(s), batch(*s) {
    batch.reserve_rows(rows.rows());
    for (std::size_t r = 0; r < rows.rows(); ++r) {
      const RowView from = rows.row(r);
      auto to = batch.add_row();
      for (std::size_t i = 0; i < from.size(); ++i) to[i] = from[i];
    }
  }
  std::shared_ptr<const Schema> schema;
  Batch batch;
  std::vector<Value> outputs;
  Status status;
  bool done = false;  // guarded by the pool's mutex
};

// Workers and their queue, shared with the workers so that a worker stuck in a call can outlive
// the model that started it.
struct Pool {
  std::mutex mu;
  std::condition_variable work;
  std::condition_variable finished;
  std::deque<std::shared_ptr<Call>> queue;
  bool stop = false;
};

class DeadlineModel final : public Model {
 public:
  DeadlineModel(std::shared_ptr<const Model> inner, const Schema& schema,
                std::chrono::milliseconds timeout, std::size_t workers)
      : inner_(std::move(inner)),
        schema_(std::make_shared<const Schema>(schema)),
        timeout_(timeout),
        pool_(std::make_shared<Pool>()) {
    for (std::size_t i = 0; i < workers; ++i) {
      // Detached: one stuck in a call that never returns must not block unloading.
      std::thread([pool = pool_, inner = inner_] { work(*pool, *inner); }).detach();
    }
  }

  ~DeadlineModel() override {
    {
      std::lock_guard lock(pool_->mu);
      pool_->stop = true;
    }
    pool_->work.notify_all();
  }

  Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
    auto call = std::make_shared<Call>(schema_, batch);
    std::unique_lock lock(pool_->mu);
    pool_->queue.push_back(call);
    pool_->work.notify_one();
    if (!pool_->finished.wait_for(lock, timeout_, [&] { return call->done; })) {
      // Still queued: nobody will start it now.
      std::erase(pool_->queue, call);
      return DeadlineExceeded("the prediction did not finish within the model's timeout_ms (" +
                              std::to_string(timeout_.count()) + " ms)");
    }
    lock.unlock();
    if (!call->status.ok()) return call->status;
    for (auto& v : call->outputs) outputs.push_back(std::move(v));
    return Status::Ok();
  }

 private:
  static void work(Pool& pool, const Model& inner) {
    // Started by the (idle-priority) loader, these threads answer requests.
    restore_this_thread_priority();
    std::unique_lock lock(pool.mu);
    for (;;) {
      pool.work.wait(lock, [&] { return pool.stop || !pool.queue.empty(); });
      if (pool.stop) return;
      std::shared_ptr<Call> call = std::move(pool.queue.front());
      pool.queue.pop_front();
      lock.unlock();
      Status status = inner.predict(call->batch, call->outputs);  // guarded: never throws
      lock.lock();
      call->status = std::move(status);
      call->done = true;
      pool.finished.notify_all();
    }
  }

  std::shared_ptr<const Model> inner_;
  std::shared_ptr<const Schema> schema_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<Pool> pool_;
};

}  // namespace

std::unique_ptr<Model> with_deadline(std::shared_ptr<const Model> inner, const Schema& schema,
                                     std::chrono::milliseconds timeout, std::size_t workers) {
  return std::make_unique<DeadlineModel>(std::move(inner), schema, timeout,
                                         std::max<std::size_t>(workers, 1));
}

}  // namespace forklift
