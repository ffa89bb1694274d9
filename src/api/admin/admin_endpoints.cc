#include "api/admin/admin_endpoints.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdlib>

#include "api/admin/admin_json.h"
#include "common/json_writer.h"
#include "core/repository.h"

namespace forklift {
namespace {

// Whether the query string says force=true (override the schema compatibility guard).
bool forced(std::string_view target) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return false;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    if (query.substr(0, amp) == "force=true") return true;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

Result<std::int64_t> parse_promote_body(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body).get(root)) return InvalidArgument("malformed JSON; send {\"version\": N}");
  std::int64_t v = 0;
  if (root["version"].get_int64().get(v) || v < 1) {
    return InvalidArgument("'version' must be a positive integer");
  }
  return v;
}

Status unknown_model(std::string_view id) {
  return NotFound("unknown model '" + std::string(id) + "'");
}

}  // namespace

void post_login(const AdminCall& call) {
  // The UI checks a token before it keeps it: reaching here means the token is right.
  std::string out = "{\"ok\":true,\"actor\":";
  json::append_string(out, call.actor);
  call.res.json(200, out + "}");
}

void get_timeseries(const AdminCall& call) {
  if (call.ctx.timeseries == nullptr) {
    return call.res.json(200, "{\"interval_seconds\":1,\"models\":{}}");
  }
  std::size_t seconds = 600;
  const std::string_view target = call.req.target;
  if (const auto q = target.find("seconds="); q != std::string_view::npos) {
    seconds = std::min<std::size_t>(
        600, std::strtoul(std::string(target.substr(q + 8)).c_str(), nullptr, 10));
  }
  call.res.json(200, call.ctx.timeseries->to_json(seconds));
}

void get_models(const AdminCall& call) {
  const auto snap = call.ctx.registry->snapshot();
  std::string out = "{\"models\":[";
  bool first = true;
  for (const auto& [id, m] : snap->models) {
    if (!first) out.push_back(',');
    first = false;
    append_model(out, m, call.with_token);
  }
  out += "],\"memory_budget\":";
  if (const MemoryBudgetStats* b = call.ctx.registry->memory_budget()) {
    out += "{\"budget_bytes\":" + std::to_string(b->budget_bytes) +
           ",\"used_bytes\":" + std::to_string(b->used_bytes.load()) +
           ",\"cold_loads\":" + std::to_string(b->cold_loads.load()) +
           ",\"evictions\":" + std::to_string(b->evictions.load()) +
           ",\"cold_start_requests\":" + std::to_string(b->cold_requests.load()) +
           ",\"cold_start_timeouts\":" + std::to_string(b->cold_timeouts.load()) + "}";
  } else {
    out += "null";
  }
  out += "}";
  call.res.json(200, std::move(out));
}

void get_audit(const AdminCall& call) {
  const auto entries = call.ctx.registry->audit();
  if (!entries.ok()) return respond_error(call.res, entries.status());
  std::string out = "{\"entries\":[";
  for (std::size_t i = 0; i < entries->size(); ++i) {
    if (i) out.push_back(',');
    append_audit_json(out, (*entries)[i]);
  }
  out += "]}";
  call.res.json(200, std::move(out));
}

void get_model(const AdminCall& call, std::string_view model_id) {
  const auto snap = call.ctx.registry->snapshot();
  auto it = snap->models.find(model_id);
  if (it == snap->models.end()) return respond_error(call.res, unknown_model(model_id));
  std::string out;
  append_model(out, it->second, call.with_token);
  out.back() = ',';  // the model object continues
  append_shadow_comparisons(out, model_id, *call.ctx.metrics);
  out.push_back(',');
  append_drift(out, it->second);
  out.push_back(',');
  append_lineage(out, it->second, call.ctx.registry->root());
  if (call.ctx.feedback != nullptr) {
    out.push_back(',');
    call.ctx.feedback->append_json(out, model_id);
  }
  out.push_back('}');
  call.res.json(200, std::move(out));
}

void get_deployment(const AdminCall& call, std::string_view model_id) {
  const auto snap = call.ctx.registry->snapshot();
  auto it = snap->models.find(model_id);
  if (it == snap->models.end()) return respond_error(call.res, unknown_model(model_id));
  call.res.json(200, deployment_answer(model_id, it->second.control.deployment));
}

void put_deployment(const AdminCall& call, std::string_view model_id) {
  auto d = parse_deployment_json(*call.req.body);
  if (!d.ok()) return respond_error(call.res, d.status());
  auto set = call.ctx.registry->set_deployment(model_id, std::move(d).value(), call.actor, "deploy",
                                               forced(call.req.target));
  if (!set.ok()) return respond_error(call.res, set.status());
  call.res.json(200, deployment_answer(model_id, *set));
}

void post_promote(const AdminCall& call, std::string_view model_id) {
  auto v = parse_promote_body(*call.req.body);
  if (!v.ok()) return respond_error(call.res, v.status());
  auto set = call.ctx.registry->promote(model_id, *v, call.actor, forced(call.req.target));
  if (!set.ok()) return respond_error(call.res, set.status());
  call.res.json(200, deployment_answer(model_id, *set));
}

void post_rollback(const AdminCall& call, std::string_view model_id) {
  auto set = call.ctx.registry->rollback(model_id, call.actor);
  if (!set.ok()) return respond_error(call.res, set.status());
  call.res.json(200, deployment_answer(model_id, *set));
}

void post_reload(const AdminCall& call, std::string_view model_id, std::string_view version) {
  const std::int64_t v = parse_version(version);
  if (v < 1) {
    return respond_error(call.res,
                         NotFound("no such version of model '" + std::string(model_id) + "'"));
  }
  if (Status s =
          call.ctx.registry->reload_version(model_id, v, call.actor, forced(call.req.target));
      !s.ok()) {
    return respond_error(call.res, s);
  }
  std::string out = "{\"model_id\":";
  json::append_string(out, model_id);
  out += ",\"version\":";
  json::append_int(out, v);
  out += ",\"reloaded\":true}";
  call.res.json(200, std::move(out));
}

namespace {

struct RolloutRequest {
  std::optional<std::int64_t> version;
  std::string policy;  // JSON overriding fields of the version's policy; empty: none
};

// {"version": N, "policy": {...}}, both optional; an empty body is {}.
Result<RolloutRequest> parse_rollout_request(const std::string& body) {
  RolloutRequest out;
  if (body.empty()) return out;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::object obj;
  if (parser.parse(body).get(root) || root.get_object().get(obj)) {
    return InvalidArgument("malformed JSON; send {\"version\": N, \"policy\": {...}}");
  }
  for (auto [key, value] : obj) {
    if (key == "version") {
      std::int64_t v = 0;
      if (value.get_int64().get(v) || v < 1) {
        return InvalidArgument("'version' must be a positive integer");
      }
      out.version = v;
    } else if (key == "policy") {
      out.policy = simdjson::minify(value);
      // Checked here too, so a malformed policy is refused before anything loads.
      if (auto p = parse_rollout_policy_json(out.policy); !p.ok()) return p.status();
    } else {
      return InvalidArgument("unknown field '" + std::string(key.substr(0, 64)) +
                             "' (version, policy)");
    }
  }
  return out;
}

// {"reason": "..."} (optional): what a person says when pausing or aborting.
Result<std::string> parse_reason(const std::string& body) {
  if (body.empty()) return std::string();
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body).get(root) || !root.is_object()) {
    return InvalidArgument("malformed JSON; send {\"reason\": \"...\"} or nothing");
  }
  std::string_view reason;
  for (auto [key, value] : root.get_object()) {
    if (key != "reason") {
      return InvalidArgument("unknown field '" + std::string(key.substr(0, 64)) + "' (reason)");
    }
    if (value.get_string().get(reason)) return InvalidArgument("'reason' must be a string");
  }
  if (reason.size() > 500) return InvalidArgument("'reason' is longer than 500 characters");
  for (char c : reason) {
    if (static_cast<unsigned char>(c) < 0x20) {
      return InvalidArgument("'reason' must not hold control characters");
    }
  }
  return std::string(reason);
}

void answer_rollout(const AdminCall& call, std::string_view model_id) {
  const auto snap = call.ctx.registry->snapshot();
  auto it = snap->models.find(model_id);
  if (it == snap->models.end()) return respond_error(call.res, unknown_model(model_id));
  call.res.json(200, rollout_answer(it->second));
}

}  // namespace

void get_rollout(const AdminCall& call, std::string_view model_id) {
  answer_rollout(call, model_id);
}

void post_rollout(const AdminCall& call, std::string_view model_id) {
  auto request = parse_rollout_request(*call.req.body);
  if (!request.ok()) return respond_error(call.res, request.status());
  auto started =
      call.ctx.registry->start_rollout(model_id, request->version, std::nullopt, call.actor,
                                       forced(call.req.target), request->policy);
  if (!started.ok()) return respond_error(call.res, started.status());
  answer_rollout(call, model_id);
}

void post_rollout_step(const AdminCall& call, std::string_view model_id, std::string_view step) {
  auto reason = parse_reason(*call.req.body);
  if (!reason.ok()) return respond_error(call.res, reason.status());
  RolloutStep kind;
  if (step == "pause") {
    kind = RolloutStep::kPause;
  } else if (step == "resume") {
    kind = RolloutStep::kResume;
  } else if (step == "abort") {
    kind = RolloutStep::kAbort;
  } else {
    return respond_error(call.res, NotFound("no rollout step '" + std::string(step) + "'"));
  }
  auto done = call.ctx.registry->step_rollout(model_id, kind, call.actor, *reason);
  if (!done.ok()) return respond_error(call.res, done.status());
  answer_rollout(call, model_id);
}

void post_repository_index(const AdminCall& call) {
  call.res.json(200, repository_index(*call.ctx.registry->snapshot()));
}

void post_repository_load(const AdminCall& call, std::string_view model_id, bool load) {
  ModelRegistry& registry = *call.ctx.registry;
  const Status s = load ? registry.load_model(model_id, call.actor)
                        : registry.unload_model(model_id, call.actor);
  if (!s.ok()) {
    // Triton answers a failed load or unload with 400 and {"error"}; a change that could not be
    // stored is 503 (with Retry-After), as everywhere in the admin API.
    if (s.code() == StatusCode::kUnavailable) return respond_error(call.res, s);
    return call.res.json(s.code() == StatusCode::kNotFound ? 404 : 400,
                         json::error_body(s.message()));
  }
  call.res.json(200, "{}");
}

}  // namespace forklift
