#include "core/control_state.h"

#include <simdjson.h>

#include <chrono>
#include <ctime>

#include "common/json_writer.h"

namespace forklift {
namespace {

Result<ModelControl> control_from(simdjson::dom::element value) {
  ModelControl control;
  simdjson::dom::element deployment;
  if (!value["deployment"].get(deployment)) {
    auto d = parse_deployment_json(simdjson::minify(deployment));
    if (!d.ok()) return d.status();
    control.deployment = std::move(d).value();
  }
  simdjson::dom::array history;
  if (!value["history"].get_array().get(history)) {
    for (auto h : history) {
      auto d = parse_deployment_json(simdjson::minify(h));
      if (!d.ok()) return d.status();
      control.history.push_back(std::move(d).value());
    }
  }
  bool unloaded = false;
  if (!value["unloaded"].get_bool().get(unloaded)) control.unloaded = unloaded;
  std::int64_t revision = 0;
  if (!value["revision"].get_int64().get(revision)) control.revision = revision;
  simdjson::dom::element rollout;
  if (!value["rollout"].get(rollout) && !rollout.is_null()) {
    auto r = parse_rollout_json(simdjson::minify(rollout));
    if (!r.ok()) return r.status();
    control.rollout = std::move(r).value();
  }
  return control;
}

}  // namespace

std::string now_iso8601() {
  const std::time_t secs = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void append_audit_json(std::string& out, const AuditEntry& a) {
  out += "{\"time\":";
  json::append_string(out, a.time);
  out += ",\"actor\":";
  json::append_string(out, a.actor);
  out += ",\"model_id\":";
  json::append_string(out, a.model_id);
  out += ",\"action\":";
  json::append_string(out, a.action);
  out += ",\"before\":";
  json::append_string(out, a.before);
  out += ",\"after\":";
  json::append_string(out, a.after);
  out += ",\"reason\":";
  json::append_string(out, a.reason);
  out.push_back('}');
}

void append_model_control_json(std::string& out, const ModelControl& c) {
  out += "{\"deployment\":";
  append_deployment_json(out, c.deployment);
  out += ",\"history\":[";
  for (std::size_t i = 0; i < c.history.size(); ++i) {
    if (i) out.push_back(',');
    append_deployment_json(out, c.history[i]);
  }
  out += "],\"unloaded\":";
  out += c.unloaded ? "true" : "false";
  out += ",\"revision\":";
  json::append_int(out, c.revision);
  if (c.rollout) {
    out += ",\"rollout\":";
    append_rollout_json(out, *c.rollout);
  }
  out.push_back('}');
}

Result<ModelControl> parse_model_control_json(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(json.data(), json.size()).get(root)) {
    return InvalidArgument(std::string("model state is not valid JSON: ") +
                           simdjson::error_message(error));
  }
  return control_from(root);
}

std::string control_state_to_json(const ControlState& state) {
  std::string out = "{\"format\":1,\"models\":{";
  bool first = true;
  for (const auto& [id, control] : state.models) {
    if (!first) out.push_back(',');
    first = false;
    json::append_string(out, id);
    out.push_back(':');
    append_model_control_json(out, control);
  }
  out += "},\"audit\":[";
  for (std::size_t i = 0; i < state.audit.size(); ++i) {
    if (i) out.push_back(',');
    append_audit_json(out, state.audit[i]);
  }
  out += "]}\n";
  return out;
}

Result<ControlState> parse_control_state_json(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(json.data(), json.size()).get(root)) {
    return InvalidArgument(std::string("not valid JSON: ") + simdjson::error_message(error));
  }
  ControlState state;
  simdjson::dom::object models;
  if (!root["models"].get_object().get(models)) {
    for (auto [id, value] : models) {
      auto control = control_from(value);
      if (!control.ok()) {
        return InvalidArgument("model '" + std::string(id) + "': " + control.status().message());
      }
      state.models.emplace(std::string(id), std::move(control).value());
    }
  }
  simdjson::dom::array audit;
  if (!root["audit"].get_array().get(audit)) {
    for (auto a : audit) {
      const auto field = [&](const char* key) {
        std::string_view v;
        return a[key].get_string().get(v) ? std::string() : std::string(v);
      };
      state.audit.push_back(AuditEntry{field("time"), field("actor"), field("model_id"),
                                       field("action"), field("before"), field("after"),
                                       field("reason")});
    }
  }
  return state;
}

}  // namespace forklift
