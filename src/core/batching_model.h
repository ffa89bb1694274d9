// Dynamic batching (model.yaml's `dynamic_batching`, as Triton's dynamic batcher): requests to
// one version wait in a queue, and the version's batching thread(s) predict whatever has gathered
// in one runtime call — up to `max_batch_size` rows, the oldest request having waited at most
// `max_queue_delay_us` for others to join — then hand each request its own outputs.
//
// It pays where a runtime's cost per call is much larger than its cost per row (XGBoost's C API,
// libtorch, a Python model): under load, many one-row requests become one call. It costs a thread
// hop each way and up to the queue delay, so a version must ask for it.
//
// A request larger than max_batch_size rows is predicted on its own, never split.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "forklift/runtime.h"
#include "observability/metrics.h"

namespace forklift {

struct BatchingOptions {
  std::size_t max_batch_size = 1;  // rows per runtime call (one larger request excepted)
  std::chrono::microseconds max_queue_delay{0};
  std::size_t threads = 1;                  // runtime calls that may run at once
  std::size_t max_queue_size = 1024;        // requests waiting; more are refused (Unavailable)
  std::size_t max_queue_bytes = 64u << 20;  // and the bytes their rows take (value_bytes.h)
};

// On a batching thread, while it calls the completions of one runtime call: when that call
// started (the end of its requests' queue wait, for their traces). The epoch elsewhere.
std::chrono::system_clock::time_point& current_runtime_call_start();

class BatchingModel final : public Model {
 public:
  BatchingModel(std::shared_ptr<const Model> inner, BatchingOptions options);
  ~BatchingModel() override;
  BatchingModel(const BatchingModel&) = delete;
  BatchingModel& operator=(const BatchingModel&) = delete;

  // Queues `batch`; `done` is called later on a batching thread. `batch` (and the schema it
  // points to) must stay alive until then. When max_queue_size requests are already waiting,
  // `done` is called at once, on the caller's thread, with Unavailable (load shedding).
  // `inner` must be guarded (guarded_model.h): the batching threads do not catch.
  void submit(const Batch& batch, PredictDone done) const override;

  // The blocking form (shadows): queues and waits.
  Status predict(const Batch& batch, std::vector<Value>& outputs) const override;

  // Where rows and requests per call and queue waits are counted from now on (the registry
  // attaches a version's metrics once it has passed its self-tests).
  void set_metrics(std::shared_ptr<VersionMetrics> metrics) const;
  // Requests waiting for a runtime call now (an autoscaling signal).
  std::size_t queued_requests() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace forklift
