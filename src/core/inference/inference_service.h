// The one path of a prediction, whatever the protocol (/infer, Open Inference Protocol v2):
//
//   route (pick the version) -> submit to the version's model (guarded; with a deadline and
//   batching when it asks) -> outcome metrics -> the caller's answer -> prediction event, the
//   prediction kept for feedback labels, shadows.
//
// Handlers (api/) only parse a request into a Batch, call this, and write the answer. None of
// them knows whether a version batches: a version that queues answers later, on its batching
// thread, and the caller's event loop is free meanwhile.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/feedback/feedback_service.h"
#include "core/model_registry.h"
#include "core/shadow_runner.h"
#include "observability/event_log.h"
#include "observability/tracer.h"

namespace forklift {

// The version a request goes to.
struct InferenceTarget {
  std::shared_ptr<const RegistrySnapshot> snapshot;  // whose deployment names the shadows
  std::shared_ptr<const LoadedModel> model;
  bool routed = false;  // no version was asked: the deployment chose, so its shadows apply

  // The schema the request's rows must be in (they point at it).
  const Schema& schema() const { return *model->schema; }
  // Whether infer() calls its completion before it returns (a version that queues requests,
  // for dynamic batching, answers later).
  // A version not in memory answers once it has been loaded.
  bool answers_now() const { return model->batcher == nullptr && !model->cold; }
};

struct InferenceResult {
  const LoadedModel& model;
  Status status;                      // on failure, names the model and version
  const std::vector<Value>& outputs;  // one per row when `status` is ok
};

// Called exactly once with the result, on the caller's thread or a batching thread. It must not
// throw, and must copy what it keeps: the result lives only for the call.
using InferenceDone = std::function<void(const InferenceResult& result)>;

class InferenceService {
 public:
  // `shadows`, `events` and `feedback` may be null: shadows are not run, events not written,
  // predictions not kept for feedback labels.
  InferenceService(const ModelRegistry& registry, ShadowRunner* shadows, EventLog* events,
                   FeedbackService* feedback = nullptr);

  // The loaded version for `model_id`: `version` if given, else the deployment's choice for
  // `experiment_key` (sticky), else the newest serving one. NotFound or Unavailable otherwise.
  Result<InferenceTarget> route(std::string_view model_id, std::optional<std::int64_t> version,
                                std::string_view experiment_key = {}) const;

  // Predicts `batch` (rows in target.schema()) and calls `done` with the result. `start` is when
  // the request arrived: the version's latency histogram counts from it.
  // `trace` (may be null) gets the request's queue, predict and event spans.
  void infer(InferenceTarget target, Batch batch, std::string request_id,
             std::chrono::steady_clock::time_point start, InferenceDone done,
             std::shared_ptr<RequestTrace> trace = nullptr) const;

  // A request that reached a version but could not become rows of its schema (a missing feature,
  // a wrong type): counted as the version's client error. Returns `status`.
  Status refuse(const InferenceTarget& target, Status status,
                std::chrono::steady_clock::time_point start) const;

 private:
  struct Job;
  void finish(Job& job, Status status, std::vector<Value> outputs) const;
  // The queue (when the version batches) and predict spans of a traced or timed request.
  void trace_prediction(Job& job, const Status& status) const;
  void after_success(Job& job, const std::vector<Value>& outputs) const;

  const ModelRegistry& registry_;
  ShadowRunner* shadows_;
  EventLog* events_;
  FeedbackService* feedback_;
};

}  // namespace forklift
