// The routes of the data plane. Each handler fills an HttpResponse and never throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "api/http_types.h"
#include "core/inference/inference_service.h"
#include "core/model_registry.h"
#include "observability/repository_stats.h"
#include "observability/timeseries.h"

namespace forklift {

namespace training {
class JobQueue;
}

// State every handler needs.
struct ApiContext {
  ModelRegistry* registry = nullptr;
  const InferenceService* inference = nullptr;  // every prediction goes through it
  MetricsRegistry* metrics = nullptr;
  double log_requests = 0;           // fraction of requests written to the log (0: none, 1: all)
  const EventLog* events = nullptr;  // for /metrics (null: no prediction events)
  const TimeSeries* timeseries = nullptr;        // null: no /admin/timeseries (the UI's charts)
  const ConnectionStats* connections = nullptr;  // the data plane's, for /metrics
  FeedbackService* feedback = nullptr;           // null: feedback is off
  std::string feedback_token = {};     // when set, POST /feedback needs it as a bearer token
  training::JobQueue* jobs = nullptr;  // null: this server runs no training jobs
  Tracer* tracer = nullptr;            // null: no traces are exported
  bool server_timing = false;          // every answer carries Server-Timing (else on request)
  const RepositoryStats* repository = nullptr;  // a remote repository's mirror, for /metrics
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

// POST /feedback (`model_id` empty) and POST /v2/models/<id>/feedback: labels for earlier
// predictions, joined by request id.
void handle_feedback(const ApiContext& ctx, std::string_view model_id, const HttpRequest& req,
                     HttpResponse& res);

// Sets `res` to the JSON error for `status`.
void respond_error(HttpResponse& res, const Status& status);

}  // namespace forklift
