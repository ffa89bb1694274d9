#include "core/rollout/rollout_policy.h"

#include <simdjson.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>

#include "common/json_writer.h"

namespace forklift {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

// Reads one object's fields through `fields` (name -> reader); an unknown name is refused.
using FieldReader = std::function<Status(element)>;
Status read_object(element value, std::string_view where,
                   const std::map<std::string_view, FieldReader>& fields) {
  object obj;
  if (value.get_object().get(obj))
    return InvalidArgument(std::string(where) + " must be an object");
  for (auto [key, v] : obj) {
    const auto reader = fields.find(key);
    if (reader == fields.end()) {
      return InvalidArgument(std::string(where) + " has no field '" +
                             std::string(key.substr(0, 64)) + "'");
    }
    if (Status s = reader->second(v); !s.ok()) return s;
  }
  return Status::Ok();
}

FieldReader number(double& out, std::string where) {
  return [&out, where](element v) {
    if (v.get_double().get(out) || !std::isfinite(out)) {
      return InvalidArgument(where + " must be a number");
    }
    return Status::Ok();
  };
}

FieldReader integer(std::int64_t& out, std::string where) {
  return [&out, where](element v) {
    if (v.get_int64().get(out)) return InvalidArgument(where + " must be an integer");
    return Status::Ok();
  };
}

Status read_shadow(element v, RolloutPolicy& p) {
  bool on = true;
  if (!v.get_bool().get(on)) {
    p.shadow = on ? std::optional(RolloutPolicy::ShadowStage{}) : std::nullopt;
    return Status::Ok();
  }
  if (v.is_null()) {
    p.shadow.reset();
    return Status::Ok();
  }
  // Fields not given keep the base's (or the defaults, when the base skips the stage).
  RolloutPolicy::ShadowStage s = p.shadow.value_or(RolloutPolicy::ShadowStage{});
  if (Status st =
          read_object(v, "rollout.shadow",
                      {{"min_requests", integer(s.min_requests, "shadow.min_requests")},
                       {"min_seconds", number(s.min_seconds, "shadow.min_seconds")},
                       {"sample_rate", number(s.sample_rate, "shadow.sample_rate")},
                       {"agree_tolerance", number(s.agree_tolerance, "shadow.agree_tolerance")},
                       {"min_agreement", number(s.min_agreement, "shadow.min_agreement")}});
      !st.ok()) {
    return st;
  }
  p.shadow = s;
  return Status::Ok();
}

Status read_steps(element v, std::vector<double>& steps) {
  simdjson::dom::array arr;
  if (v.get_array().get(arr)) return InvalidArgument("canary.steps must be a list of percents");
  steps.clear();
  for (auto e : arr) {
    double d = 0;
    if (e.get_double().get(d)) return InvalidArgument("canary.steps must be a list of percents");
    if (steps.size() >= 100) return InvalidArgument("canary.steps has more than 100 steps");
    steps.push_back(d);
  }
  return Status::Ok();
}

}  // namespace

Status RolloutPolicy::validate() const {
  if (shadow) {
    if (shadow->min_requests < 0) return InvalidArgument("shadow.min_requests must be >= 0");
    if (!(shadow->min_seconds >= 0 && shadow->min_seconds <= 30 * 86400)) {
      return InvalidArgument("shadow.min_seconds must be 0 to 2592000 (30 days)");
    }
    if (!(shadow->sample_rate > 0 && shadow->sample_rate <= 1)) {
      return InvalidArgument("shadow.sample_rate must be in (0, 1]");
    }
    if (!(shadow->agree_tolerance >= 0)) {
      return InvalidArgument("shadow.agree_tolerance must be >= 0");
    }
    if (!(shadow->min_agreement >= 0 && shadow->min_agreement <= 1)) {
      return InvalidArgument("shadow.min_agreement must be 0 to 1");
    }
  }
  if (canary.steps.empty()) return InvalidArgument("canary.steps must name at least one step");
  double previous = 0;
  for (double step : canary.steps) {
    if (!(step > previous && step <= 100 && step >= 0.01)) {
      return InvalidArgument("canary.steps must increase, each from 0.01 to 100");
    }
    // Weights are in hundredths of a percent: a finer step would round to nothing.
    if (std::fabs(std::round(step * 100) - step * 100) > 1e-9) {
      return InvalidArgument("canary.steps take at most two decimals (0.01% is the finest)");
    }
    previous = step;
  }
  if (canary.steps.back() != 100) return InvalidArgument("the last canary step must be 100");
  if (!(canary.hold_seconds >= 0 && canary.hold_seconds <= 30 * 86400)) {
    return InvalidArgument("canary.hold_seconds must be 0 to 2592000 (30 days)");
  }
  if (canary.min_requests < 0) return InvalidArgument("canary.min_requests must be >= 0");
  const Guardrails& g = guardrails;
  if (!(g.max_error_ratio_increase >= 0 && g.max_error_ratio_increase <= 1)) {
    return InvalidArgument("guardrails.max_error_ratio_increase must be 0 to 1");
  }
  if (!(g.max_p99_ratio >= 1)) return InvalidArgument("guardrails.max_p99_ratio must be >= 1");
  if (!(g.p99_slack_ms >= 0)) return InvalidArgument("guardrails.p99_slack_ms must be >= 0");
  if (g.min_requests < 1) return InvalidArgument("guardrails.min_requests must be >= 1");
  if (!g.quality_metric.empty() && g.quality_metric != "mae" && g.quality_metric != "log_loss" &&
      g.quality_metric != "accuracy" && g.quality_metric != "auc") {
    return InvalidArgument("guardrails.quality_metric must be mae, log_loss, accuracy or auc");
  }
  if (!(g.max_quality_loss >= 0)) {
    return InvalidArgument("guardrails.max_quality_loss must be >= 0");
  }
  if (g.min_labels < 1) return InvalidArgument("guardrails.min_labels must be >= 1");
  return Status::Ok();
}

std::vector<std::string> RolloutPolicy::stage_names() const {
  std::vector<std::string> names;
  if (shadow) names.emplace_back("shadow");
  for (double step : canary.steps) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "canary %g%%", step);
    names.emplace_back(buf);
  }
  return names;
}

Result<RolloutPolicy> parse_rollout_policy_json(std::string_view json, const RolloutPolicy& base) {
  simdjson::dom::parser parser;
  element root;
  if (auto error = parser.parse(json.data(), json.size()).get(root)) {
    return InvalidArgument(std::string("rollout policy: malformed JSON: ") +
                           simdjson::error_message(error));
  }
  RolloutPolicy p = base;
  RolloutPolicy::Canary& c = p.canary;
  RolloutPolicy::Guardrails& g = p.guardrails;
  const std::map<std::string_view, FieldReader> canary_fields = {
      {"steps", [&](element v) { return read_steps(v, c.steps); }},
      {"hold_seconds", number(c.hold_seconds, "canary.hold_seconds")},
      {"min_requests", integer(c.min_requests, "canary.min_requests")}};
  const std::map<std::string_view, FieldReader> guardrail_fields = {
      {"max_error_ratio_increase",
       number(g.max_error_ratio_increase, "guardrails.max_error_ratio_increase")},
      {"max_p99_ratio", number(g.max_p99_ratio, "guardrails.max_p99_ratio")},
      {"p99_slack_ms", number(g.p99_slack_ms, "guardrails.p99_slack_ms")},
      {"min_requests", integer(g.min_requests, "guardrails.min_requests")},
      {"quality_metric",
       [&](element v) {
         std::string_view s;
         if (v.get_string().get(s)) return InvalidArgument("guardrails.quality_metric: a string");
         g.quality_metric = std::string(s.substr(0, 32));
         return Status::Ok();
       }},
      {"max_quality_loss", number(g.max_quality_loss, "guardrails.max_quality_loss")},
      {"min_labels", integer(g.min_labels, "guardrails.min_labels")}};
  Status s = read_object(
      root, "the rollout policy",
      {{"shadow", [&](element v) { return read_shadow(v, p); }},
       {"canary", [&](element v) { return read_object(v, "rollout.canary", canary_fields); }},
       {"guardrails",
        [&](element v) { return read_object(v, "rollout.guardrails", guardrail_fields); }}});
  if (!s.ok()) return s;
  if (Status v = p.validate(); !v.ok()) return InvalidArgument("rollout policy: " + v.message());
  return p;
}

void append_rollout_policy_json(std::string& out, const RolloutPolicy& p) {
  out += "{\"shadow\":";
  if (p.shadow) {
    out += "{\"min_requests\":";
    json::append_int(out, p.shadow->min_requests);
    out += ",\"min_seconds\":";
    json::append_double(out, p.shadow->min_seconds);
    out += ",\"sample_rate\":";
    json::append_double(out, p.shadow->sample_rate);
    out += ",\"agree_tolerance\":";
    json::append_double(out, p.shadow->agree_tolerance);
    out += ",\"min_agreement\":";
    json::append_double(out, p.shadow->min_agreement);
    out.push_back('}');
  } else {
    out += "false";
  }
  out += ",\"canary\":{\"steps\":[";
  for (std::size_t i = 0; i < p.canary.steps.size(); ++i) {
    if (i) out.push_back(',');
    json::append_double(out, p.canary.steps[i]);
  }
  out += "],\"hold_seconds\":";
  json::append_double(out, p.canary.hold_seconds);
  out += ",\"min_requests\":";
  json::append_int(out, p.canary.min_requests);
  const RolloutPolicy::Guardrails& g = p.guardrails;
  out += "},\"guardrails\":{\"max_error_ratio_increase\":";
  json::append_double(out, g.max_error_ratio_increase);
  out += ",\"max_p99_ratio\":";
  json::append_double(out, g.max_p99_ratio);
  out += ",\"p99_slack_ms\":";
  json::append_double(out, g.p99_slack_ms);
  out += ",\"min_requests\":";
  json::append_int(out, g.min_requests);
  out += ",\"quality_metric\":";
  json::append_string(out, g.quality_metric);
  out += ",\"max_quality_loss\":";
  json::append_double(out, g.max_quality_loss);
  out += ",\"min_labels\":";
  json::append_int(out, g.min_labels);
  out += "}}";
}

}  // namespace forklift
