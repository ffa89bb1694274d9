#include <cstdint>

#include "api/handlers.h"
#include "common/json_writer.h"

namespace forklift {

unsigned http_status(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kFailedPrecondition:  // e.g. deploying a version that failed to load
      return 409;
    case StatusCode::kInternal:
      return 500;
    case StatusCode::kDeadlineExceeded:
      return 504;
  }
  return 500;
}

void respond_error(HttpResponse& res, const Status& status) {
  res.json(http_status(status), json::error_body(status.message()));
  // 503 means "not now": overloaded, unloading, a store away. Clients and balancers may retry.
  if (res.status == 503) res.headers.emplace_back("Retry-After", "1");
}

Status prediction_failure(const LoadedModel& model, const Status& status) {
  if (status.code() == StatusCode::kDeadlineExceeded) {
    if (model.metrics) model.metrics->timeouts.fetch_add(1, std::memory_order_relaxed);
    return DeadlineExceeded("model '" + model.model_id + "' version " +
                            std::to_string(model.version) + ": " + status.message());
  }
  if (status.code() == StatusCode::kUnavailable) {  // a full queue, or the version is unloading
    return Unavailable("model '" + model.model_id + "' version " + std::to_string(model.version) +
                       ": " + status.message());
  }
  return Internal("model '" + model.model_id + "' version " + std::to_string(model.version) +
                  " failed to predict: " + status.message());
}

Status predict_guarded(const LoadedModel& model, const Batch& batch, std::vector<Value>& outputs) {
  try {
    outputs.reserve(batch.rows());
    Status s = model.model->predict(batch, outputs);
    if (!s.ok()) return prediction_failure(model, s);
    if (outputs.size() != batch.rows()) {
      return prediction_failure(
          model, Internal("returned " + std::to_string(outputs.size()) + " outputs for " +
                          std::to_string(batch.rows()) + " rows"));
    }
    return Status::Ok();
  } catch (const std::exception& e) {
    return prediction_failure(model, Internal(e.what()));
  } catch (...) {
    return prediction_failure(model, Internal("unknown exception"));
  }
}

bool sampled(double rate) {
  if (rate <= 0) return false;
  if (rate >= 1) return true;
  thread_local std::uint64_t state =
      0x9E3779B97F4A7C15ull ^ reinterpret_cast<std::uintptr_t>(&state);
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return static_cast<double>(state >> 11) * 0x1.0p-53 < rate;
}

void after_prediction(const ApiContext& ctx, const RegistrySnapshot& snapshot,
                      const std::shared_ptr<const LoadedModel>& primary, Batch&& batch,
                      const std::vector<Value>& outputs, const std::string& request_id,
                      std::chrono::steady_clock::time_point start, bool routed) {
  const bool log_event = ctx.events != nullptr && sampled(ctx.events->sample_rate());
  if (log_event) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ctx.events->offer(PredictionEvent{std::chrono::system_clock::now(), request_id, primary, batch,
                                      outputs, seconds});
  }
  if (ctx.shadows == nullptr || !routed) return;
  const auto it = snapshot.models.find(primary->model_id);
  if (it == snapshot.models.end()) return;
  const std::vector<Shadow>& shadows = it->second.deployment.shadows;
  for (std::size_t i = 0; i < shadows.size(); ++i) {
    const Shadow& sh = shadows[i];
    if (!sampled(sh.sample_rate)) continue;
    const auto shadow = it->second.serving.find(sh.version);
    if (shadow == it->second.serving.end()) continue;
    // The last shadow may take the batch itself; the request is done with it.
    ctx.shadows->offer(ShadowJob{primary, shadow->second, sh,
                                 i + 1 == shadows.size() ? std::move(batch) : Batch(batch), outputs,
                                 request_id, log_event});
  }
}

void record_outcome(const LoadedModel& model, const Status& status,
                    std::chrono::steady_clock::time_point start, HttpResponse& res) {
  res.model_id = model.model_id;
  res.model_version = model.version;
  if (!model.metrics) return;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Outcome outcome = Outcome::kOk;
  if (!status.ok()) {
    outcome = http_status(status) < 500 ? Outcome::kClientError : Outcome::kServerError;
  }
  model.metrics->record(outcome, seconds);
}

}  // namespace forklift
