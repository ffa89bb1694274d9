#include "api/router.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "api/model_gauges.h"
#include "api/route_util.h"
#include "common/json_writer.h"
#include "common/sampling.h"
#include "core/repository.h"
#include "observability/log.h"

namespace forklift {

// Hands a handler's deferral on, so that a deferred response is accounted once it is filled.
class Router::AccountingDeferral final : public ResponseDeferral {
 public:
  AccountingDeferral(ResponseDeferral* inner, const Router& router, const RequestLine& line)
      : inner_(inner), router_(router), line_(line) {}

  ResumeResponse defer(std::chrono::seconds answer_within) override {
    deferred = true;
    return [resume = inner_->defer(answer_within), &router = router_,
            line = line_](FillResponse fill) {
      resume([fill = std::move(fill), &router, line](HttpResponse& res) {
        fill(res);
        router.account(line, res);
      });
    };
  }

  bool deferred = false;

 private:
  ResponseDeferral* inner_;
  const Router& router_;
  RequestLine line_;
};

void Router::handle(const HttpRequest& req, HttpResponse& res) const {
  // Timed only for the request log, which is off by default; the handlers time themselves.
  RequestLine line{req.head ? std::string_view("HEAD") : req.method, req.target,
                   ctx_.log_requests > 0 ? std::chrono::steady_clock::now()
                                         : std::chrono::steady_clock::time_point{},
                   trace_for(req), ctx_.server_timing || req.server_timing};
  std::optional<AccountingDeferral> deferral;
  HttpRequest routed = req;
  routed.trace = line.trace;
  if (req.deferral != nullptr) routed.deferral = &deferral.emplace(req.deferral, *this, line);
  try {
    route(routed, res);
  } catch (const std::exception& e) {
    log::error("request_failed", {{"target", req.target}, {"reason", e.what()}});
    res = HttpResponse{};
    res.json(500, json::error_body(std::string("internal error: ") + e.what()));
  }
  if (!deferral || !deferral->deferred) account(line, res);
}

std::shared_ptr<RequestTrace> Router::trace_for(const HttpRequest& req) const {
  const bool timing = ctx_.server_timing || req.server_timing;
  if ((ctx_.tracer == nullptr && !timing) || req.method != "POST") return nullptr;
  // Spans are named "{method} {route}" (OpenTelemetry's HTTP conventions), never by the ids in
  // the path.
  std::string_view path = req.target.substr(0, req.target.find('?'));
  const char* route = nullptr;
  if (path == "/infer") {
    route = "POST /infer";
  } else if (path == "/feedback") {
    route = "POST /feedback";
  } else if (path.starts_with("/v2/models/") && path.ends_with("/infer")) {
    route = path.find("/versions/") == std::string_view::npos
                ? "POST /v2/models/{model}/infer"
                : "POST /v2/models/{model}/versions/{version}/infer";
  } else {
    return nullptr;
  }
  auto trace = start_request_trace(ctx_.tracer, req.traceparent, req.tracestate, route,
                                   std::chrono::system_clock::now(), timing);
  if (trace && trace->sampled()) {
    trace->add_attribute("http.request.method", std::string("POST"));
    trace->add_attribute("http.route", std::string(route + 5));
    trace->add_attribute("url.path", std::string(path.substr(0, 256)));
    trace->add_attribute("network.protocol.version", std::string("1.1"));
  }
  return trace;
}

void Router::account(const RequestLine& line, HttpResponse& res) const {
  ctx_.metrics->count_http_response(res.status);
  if (line.trace) {
    line.trace->finish();
    if (line.trace->sampled()) {
      line.trace->add_attribute("http.response.status_code", std::int64_t{res.status});
      line.trace->add_attribute("forklift.request_id", res.request_id);
      if (!res.model_id.empty()) {
        line.trace->add_attribute("forklift.model.id", res.model_id);
        line.trace->add_attribute("forklift.model.version", res.model_version);
      }
      if (res.status >= 500) line.trace->set_error("HTTP " + std::to_string(res.status));
    }
    if (line.server_timing) res.headers.emplace_back("Server-Timing", line.trace->server_timing());
  }
  if (ctx_.log_requests <= 0 || !sampled(ctx_.log_requests)) return;
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - line.start)
                          .count();
  log::info("request", {{"request_id", res.request_id},
                        {"method", line.method},
                        {"path", line.target.substr(0, line.target.find('?'))},
                        {"status", static_cast<std::int64_t>(res.status)},
                        {"model_id", res.model_id},
                        {"version", res.model_version},
                        {"duration_us", static_cast<std::int64_t>(micros)}});
}

void Router::metrics(HttpResponse& res) const {
  res.status = 200;
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  ctx_.metrics->render(res.body);
  const auto snapshot = ctx_.registry->snapshot();
  render_model_gauges(*snapshot, res.body);
  render_rollout_gauges(*snapshot, res.body);
  render_drift_gauges(*snapshot, res.body);
  if (ctx_.connections != nullptr) {
    res.body +=
        "# HELP forklift_http_connections_open Data-plane connections open now.\n"
        "# TYPE forklift_http_connections_open gauge\n"
        "forklift_http_connections_open " +
        std::to_string(ctx_.connections->open.load(std::memory_order_relaxed)) +
        "\n"
        "# HELP forklift_http_connections_rejected_total Connections refused with 503 because "
        "--max-connections were open.\n"
        "# TYPE forklift_http_connections_rejected_total counter\n"
        "forklift_http_connections_rejected_total " +
        std::to_string(ctx_.connections->rejected.load(std::memory_order_relaxed)) +
        "\n"
        "# HELP forklift_tls_handshake_failures_total TLS handshakes on the data plane that "
        "failed (not TLS, no common version or cipher, too slow).\n"
        "# TYPE forklift_tls_handshake_failures_total counter\n"
        "forklift_tls_handshake_failures_total " +
        std::to_string(ctx_.connections->tls_handshake_failures.load(std::memory_order_relaxed)) +
        "\n"
        "# HELP forklift_http_accept_failures_total Times the data-plane listener could not "
        "accept a connection (out of file descriptors or memory) and paused for 100 ms.\n"
        "# TYPE forklift_http_accept_failures_total counter\n"
        "forklift_http_accept_failures_total " +
        std::to_string(ctx_.connections->accept_failures.load(std::memory_order_relaxed)) + "\n";
  }
  if (ctx_.tracer != nullptr) {
    const TracerStats t = ctx_.tracer->stats();
    res.body +=
        "# HELP forklift_trace_spans_exported_total Spans the OTLP collector accepted.\n"
        "# TYPE forklift_trace_spans_exported_total counter\n"
        "forklift_trace_spans_exported_total " +
        std::to_string(t.exported) +
        "\n"
        "# HELP forklift_trace_spans_dropped_total Spans not exported: the export queue was full, "
        "or the collector refused or could not be reached.\n"
        "# TYPE forklift_trace_spans_dropped_total counter\n"
        "forklift_trace_spans_dropped_total{reason=\"queue_full\"} " +
        std::to_string(t.dropped) +
        "\nforklift_trace_spans_dropped_total{reason=\"export_failed\"} " +
        std::to_string(t.failed) + "\n";
  }
  if (ctx_.feedback != nullptr) ctx_.feedback->render(res.body);
  if (ctx_.repository != nullptr) ctx_.repository->render(res.body);
  if (const MemoryBudgetStats* budget = ctx_.registry->memory_budget()) {
    budget->render(res.body);
    // Hits: predictions answered by a version that was in memory (every prediction a version
    // answered, less those that waited for a load).
    std::uint64_t answered = 0;
    for (const auto& [key, m] : ctx_.metrics->versions()) {
      answered += m->ok.load(std::memory_order_relaxed) +
                  m->client_error.load(std::memory_order_relaxed) +
                  m->server_error.load(std::memory_order_relaxed);
    }
    const std::uint64_t cold = budget->cold_requests.load(std::memory_order_relaxed);
    res.body +=
        "# HELP forklift_memory_budget_hits_total Predictions whose version was in memory.\n"
        "# TYPE forklift_memory_budget_hits_total counter\n"
        "forklift_memory_budget_hits_total " +
        std::to_string(answered > cold ? answered - cold : 0) + "\n";
    res.body +=
        "# HELP forklift_model_version_memory_bytes What a version cost in memory when it last "
        "loaded (RSS growth, its worker processes included), while it is in memory.\n"
        "# TYPE forklift_model_version_memory_bytes gauge\n";
    for (const auto& [id, m] : snapshot->models) {
      for (const auto& [v, loaded] : m.serving) {
        const auto st = m.versions.find(v);
        if (st == m.versions.end()) continue;
        res.body += "forklift_model_version_memory_bytes{model_id=\"" + prometheus_label(id) +
                    "\",version=\"" + std::to_string(v) + "\"} " +
                    std::to_string(st->second.memory_bytes) + "\n";
      }
    }
  }
  const StateStore& store = ctx_.registry->state_store();
  res.body +=
      "# HELP forklift_state_store_up Whether the state store (deployments) can be reached.\n"
      "# TYPE forklift_state_store_up gauge\n"
      "forklift_state_store_up{store=\"";
  res.body += store.shared() ? "postgres" : "local";
  res.body += store.connected() ? "\"} 1\n" : "\"} 0\n";
  if (ctx_.events != nullptr) {
    res.body +=
        "# HELP forklift_events_written_total Prediction and shadow event lines written, by sink.\n"
        "# TYPE forklift_events_written_total counter\n";
    for (const auto& sink : ctx_.events->sinks()) {
      res.body += "forklift_events_written_total{sink=\"" + std::string(sink->name()) + "\"} " +
                  std::to_string(sink->written()) + "\n";
    }
    res.body +=
        "# HELP forklift_events_dropped_total Events dropped: at the queue (full) or by a sink "
        "(unwritable, unreachable).\n"
        "# TYPE forklift_events_dropped_total counter\n"
        "forklift_events_dropped_total{stage=\"queue\"} " +
        std::to_string(ctx_.events->dropped()) + "\n";
    for (const auto& sink : ctx_.events->sinks()) {
      res.body += "forklift_events_dropped_total{stage=\"" + std::string(sink->name()) + "\"} " +
                  std::to_string(sink->dropped()) + "\n";
    }
  }
}

void Router::readiness(HttpResponse& res, bool v2) const {
  const auto snap = ctx_.registry->snapshot();
  if (snap->ready()) {
    res.json(200, v2 ? "{\"live\":true,\"ready\":true}" : "{\"ready\":true}");
    return;
  }
  std::string body = v2 ? "{\"live\":true,\"ready\":false" : "{\"ready\":false";
  body += ",\"error\":";
  std::string why = snap->initial_sync_done ? "no ready version for: " : "still loading models";
  if (snap->initial_sync_done) {
    const auto unready = snap->unready_models();
    for (std::size_t i = 0; i < unready.size(); ++i) why += (i ? ", " : "") + unready[i];
  }
  json::append_string(body, why);
  body += "}";
  res.json(503, std::move(body));
}

void Router::route(const HttpRequest& req, HttpResponse& res) const {
  std::string_view path = req.target.substr(0, req.target.find('?'));
  const bool get = req.method == "GET";
  const bool post = req.method == "POST";

  if (path == "/infer") {
    if (!post) return method_not_allowed(res, "POST");
    return handle_infer(ctx_, req, res);
  }
  if (path == "/feedback") {
    if (!post) return method_not_allowed(res, "POST");
    return handle_feedback(ctx_, {}, req, res);
  }
  if (path == "/healthz" || path == "/v2/health/live") {
    if (!get) return method_not_allowed(res, "GET");
    return res.json(200, "{\"live\":true}");
  }
  if (path == "/readyz" || path == "/v2/health/ready") {
    if (!get) return method_not_allowed(res, "GET");
    return readiness(res, path != "/readyz");
  }
  if (path == "/metrics") {
    if (!get) return method_not_allowed(res, "GET");
    return metrics(res);
  }
  if (path == "/v2" || path == "/v2/") {
    if (!get) return method_not_allowed(res, "GET");
    return handle_v2_server_metadata(res);
  }
  if (consume(path, "/v2/models/")) {
    // <id>[/versions/<v>][/ready|/infer]
    const std::string_view id = next_segment(path);
    if (!is_valid_model_id(id)) {
      return respond_error(res, NotFound("unknown model '" + std::string(id) + "'"));
    }
    std::optional<std::int64_t> version;
    if (consume(path, "versions/")) {
      const std::string_view v = next_segment(path);
      const std::int64_t parsed = parse_version(v);
      if (parsed < 0) {
        return respond_error(
            res, InvalidArgument("version '" + std::string(v) + "' is not a positive integer"));
      }
      version = parsed;
    }
    if (path.empty()) {
      if (!get) return method_not_allowed(res, "GET");
      return handle_v2_model_metadata(ctx_, id, version, res);
    }
    if (path == "ready") {
      if (!get) return method_not_allowed(res, "GET");
      return handle_v2_model_ready(ctx_, id, version, res);
    }
    if (path == "infer") {
      if (!post) return method_not_allowed(res, "POST");
      return handle_v2_infer(ctx_, id, version, req, res);
    }
    if (path == "feedback" && !version) {  // forklift's extension: labels for this model
      if (!post) return method_not_allowed(res, "POST");
      return handle_feedback(ctx_, id, req, res);
    }
  }
  res.json(404, json::error_body("no route for " + std::string(req.method) + " " +
                                 std::string(req.target.substr(0, 200))));
}

}  // namespace forklift
