// The routes of the data plane. Each handler fills an HttpResponse and never throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "api/http_types.h"
#include "core/model_registry.h"
#include "core/shadow_runner.h"
#include "observability/timeseries.h"

namespace forklift {

// State every handler needs.
struct ApiContext {
  ModelRegistry* registry = nullptr;
  MetricsRegistry* metrics = nullptr;
  double log_requests = 0;          // fraction of requests written to the log (0: none, 1: all)
  ShadowRunner* shadows = nullptr;  // null: shadows configured in deployments are not run
  EventLog* events = nullptr;       // null: no prediction events
  const TimeSeries* timeseries = nullptr;        // null: no /admin/timeseries (the UI's charts)
  const ConnectionStats* connections = nullptr;  // the data plane's, for /metrics
};

// POST /infer: forklift's own request shape (DESIGN.md, "The contract").
void handle_infer(const ApiContext& ctx, const HttpRequest& req, HttpResponse& res);

// Open Inference Protocol v2. `version` is empty when the path names none.
void handle_v2_infer(const ApiContext& ctx, std::string_view model_id,
                     std::optional<std::int64_t> version, const HttpRequest& req,
                     HttpResponse& res);
void handle_v2_model_metadata(const ApiContext& ctx, std::string_view model_id,
                              std::optional<std::int64_t> version, HttpResponse& res);
void handle_v2_model_ready(const ApiContext& ctx, std::string_view model_id,
                           std::optional<std::int64_t> version, HttpResponse& res);
void handle_v2_server_metadata(HttpResponse& res);

// Calls the runtime, turning an exception into a Status naming the model.
Status predict_guarded(const LoadedModel& model, const Batch& batch, std::vector<Value>& outputs);
// The error for a failed prediction, naming the model (a timeout is counted and stays a 504).
Status prediction_failure(const LoadedModel& model, const Status& status);

// Records the outcome of a request that reached a version, and notes the version in `res`.
void record_outcome(const LoadedModel& model, const Status& status,
                    std::chrono::steady_clock::time_point start, HttpResponse& res);

// After a successful prediction: queues the prediction event (if sampled) and, for a request the
// deployment routed (`routed`), hands copies to the model's shadows. Never blocks.
void after_prediction(const ApiContext& ctx, const RegistrySnapshot& snapshot,
                      const std::shared_ptr<const LoadedModel>& primary, Batch&& batch,
                      const std::vector<Value>& outputs, const std::string& request_id,
                      std::chrono::steady_clock::time_point start, bool routed);

// True with probability `rate` (a cheap per-thread generator).
bool sampled(double rate);

// Sets `res` to the JSON error for `status`.
void respond_error(HttpResponse& res, const Status& status);

}  // namespace forklift
