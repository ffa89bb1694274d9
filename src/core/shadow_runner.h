// Runs shadow versions off the hot path and compares their outputs with the primary's.
//
// Serving threads offer a job after the primary has answered; offer() never blocks: when the
// bounded queue is full the job is dropped and counted. One worker thread predicts with the
// shadow and records agreement, differences, errors and latency as metrics.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/deployment.h"
#include "core/version_loader.h"
#include "observability/event_log.h"
#include "observability/metrics.h"
#include "observability/tracer.h"

namespace forklift {

struct ShadowJob {
  std::shared_ptr<const LoadedModel> primary;  // keeps the batch's schema alive
  std::shared_ptr<const LoadedModel> shadow;
  Shadow config;
  Batch batch;  // in the primary's schema
  std::vector<Value> primary_outputs;
  std::string request_id;
  bool log_event = false;  // write a shadow event (the request's prediction event was sampled)
  // The traced request's span: the shadow prediction is traced too, linked to it.
  std::optional<std::pair<TraceId, SpanId>> trace_link = std::nullopt;
};

// How one shadow output compares with the primary's.
struct Comparison {
  bool agree = false;
  double abs_diff = 0;  // largest element-wise absolute difference (0 for equal non-numbers)
  double rel_diff = 0;  // abs_diff / |primary|
};
Comparison compare_outputs(const Value& primary, const Value& shadow, double agree_tolerance);

class ShadowRunner {
 public:
  static constexpr std::size_t kMaxQueuedBytes = 64u << 20;

  // `events`, if not null, receives a shadow event for each job that asks for one.
  ShadowRunner(MetricsRegistry& metrics, std::size_t capacity, EventLog* events = nullptr,
               std::size_t max_queued_bytes = kMaxQueuedBytes);
  ~ShadowRunner();  // stops the worker; jobs still queued are dropped and counted
  ShadowRunner(const ShadowRunner&) = delete;
  ShadowRunner& operator=(const ShadowRunner&) = delete;

  // Queues a job; false (and counted as dropped) when the queue is full: `capacity` jobs, or
  // `max_queued_bytes` of their rows and outputs.
  bool offer(ShadowJob job);
  // Blocks until the queue is empty and the worker idle (tests and shutdown).
  void wait_idle();
  // Where the shadow predictions of traced requests send their spans (null: nowhere). Set before
  // the first offer.
  void set_tracer(Tracer* tracer) { tracer_ = tracer; }

 private:
  // The shadow prediction's span: its own trace, linked to the request's server span.
  void trace(const ShadowJob& job, const Status& status,
             std::chrono::system_clock::time_point start) const;
  void run();
  void process(ShadowJob& job);

  MetricsRegistry& metrics_;
  Tracer* tracer_ = nullptr;
  const std::size_t capacity_;
  const std::size_t max_queued_bytes_;
  EventLog* events_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<ShadowJob> queue_;
  std::deque<std::size_t> queued_job_bytes_;  // each queued job's rows, in bytes
  std::size_t queued_bytes_ = 0;
  bool busy_ = false;
  bool stop_ = false;
  std::thread worker_;  // last: starts after everything it uses
};

}  // namespace forklift
