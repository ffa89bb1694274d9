#include "core/rollout/rollout.h"

#include <simdjson.h>

#include <chrono>
#include <cmath>

#include "common/json_writer.h"
#include "core/control_state.h"

namespace forklift {
namespace {

constexpr std::pair<RolloutPhase, std::string_view> kPhases[] = {
    {RolloutPhase::kRunning, "running"},
    {RolloutPhase::kPaused, "paused"},
    {RolloutPhase::kSucceeded, "succeeded"},
    {RolloutPhase::kRolledBack, "rolled_back"},
    {RolloutPhase::kAborted, "aborted"}};

void append_record_json(std::string& out, const RolloutRecord& r) {
  out += "{\"time\":";
  json::append_string(out, r.time);
  out += ",\"stage\":";
  json::append_string(out, r.stage);
  out += ",\"action\":";
  json::append_string(out, r.action);
  out += ",\"actor\":";
  json::append_string(out, r.actor);
  out += ",\"reason\":";
  json::append_string(out, r.reason);
  out += ",\"signals\":{";
  for (std::size_t i = 0; i < r.signals.size(); ++i) {
    if (i) out.push_back(',');
    json::append_string(out, r.signals[i].first);
    out.push_back(':');
    json::append_double(out, r.signals[i].second);
  }
  out += "}}";
}

std::string string_field(simdjson::dom::element e, const char* key) {
  std::string_view v;
  return e[key].get_string().get(v) ? std::string() : std::string(v);
}

}  // namespace

std::string_view phase_name(RolloutPhase phase) {
  for (const auto& [p, name] : kPhases) {
    if (p == phase) return name;
  }
  return "unknown";
}

std::string Rollout::stage_name() const {
  const auto names = policy.stage_names();
  return stage < names.size() ? names[stage] : "done";
}

double Rollout::canary_percent() const {
  if (in_shadow_stage()) return 0;
  const std::size_t step = stage - (policy.shadow ? 1 : 0);
  return step < policy.canary.steps.size() ? policy.canary.steps[step] : 100;
}

void Rollout::record(RolloutRecord entry) {
  timeline.push_back(std::move(entry));
  // The first entry (who started it, and why) is kept; the oldest decisions after it go.
  if (timeline.size() > kMaxRolloutTimeline) timeline.erase(timeline.begin() + 1);
}

std::vector<Shadow> unrelated_shadows(const Rollout& rollout, const Deployment& deployment) {
  std::vector<Shadow> out;
  for (const Shadow& sh : deployment.shadows) {
    if (sh.version != rollout.candidate && sh.version != rollout.baseline) out.push_back(sh);
  }
  return out;
}

Deployment rollout_deployment(const Rollout& rollout, const std::vector<Shadow>& other_shadows) {
  Deployment d;
  d.shadows = other_shadows;
  switch (rollout.phase) {
    case RolloutPhase::kSucceeded:
      d.routes = {{rollout.candidate, 1}};
      return d;
    case RolloutPhase::kRolledBack:
    case RolloutPhase::kAborted:
      d.routes = {{rollout.baseline, 1}};
      return d;
    case RolloutPhase::kRunning:
    case RolloutPhase::kPaused:
      break;
  }
  if (rollout.in_shadow_stage()) {
    d.routes = {{rollout.baseline, 1}};
    d.shadows.push_back(Shadow{rollout.candidate, rollout.policy.shadow->sample_rate,
                               rollout.policy.shadow->agree_tolerance});
    return d;
  }
  const auto candidate_weight =
      static_cast<std::uint32_t>(std::lround(rollout.canary_percent() * 100));
  if (candidate_weight >= kCanaryWeightTotal) {
    d.routes = {{rollout.candidate, 1}};
  } else {
    d.routes = {{rollout.baseline, kCanaryWeightTotal - candidate_weight},
                {rollout.candidate, candidate_weight}};
  }
  return d;
}

std::string_view step_action(RolloutStep step) {
  switch (step) {
    case RolloutStep::kAdvance:
      return "rollout-advance";
    case RolloutStep::kPromote:
      return "rollout-promote";
    case RolloutStep::kRollBack:
      return "rollout-rollback";
    case RolloutStep::kPause:
      return "rollout-pause";
    case RolloutStep::kResume:
      return "rollout-resume";
    case RolloutStep::kAbort:
      return "rollout-abort";
  }
  return "rollout";
}

Result<Rollout> next_rollout(const Rollout& now, RolloutStep step, std::string_view actor,
                             std::string reason,
                             std::vector<std::pair<std::string, double>> signals) {
  const auto refuse = [&](std::string_view what) {
    return FailedPrecondition("cannot " + std::string(what) + " the rollout of version " +
                              std::to_string(now.candidate) + ": it is " +
                              std::string(phase_name(now.phase)));
  };
  Rollout next = now;
  const std::string stage = now.stage_name();
  std::string action;
  switch (step) {
    case RolloutStep::kAdvance:
      if (now.phase != RolloutPhase::kRunning) return refuse("advance");
      if (now.stage + 1 >= now.policy.stage_count())
        return refuse("advance past the last stage of");
      ++next.stage;
      next.stage_started_unix_ms = now_unix_ms();
      action = "advanced";
      if (reason.empty()) reason = "passed " + stage + "; now " + next.stage_name();
      break;
    case RolloutStep::kPromote:
      if (!now.active()) return refuse("promote");
      next.phase = RolloutPhase::kSucceeded;
      action = "promoted";
      if (reason.empty()) reason = "passed every stage";
      next.reason = reason;
      break;
    case RolloutStep::kRollBack:
      if (!now.active()) return refuse("roll back");
      next.phase = RolloutPhase::kRolledBack;
      action = "rolled_back";
      next.reason = reason;
      break;
    case RolloutStep::kPause:
      if (now.phase != RolloutPhase::kRunning) return refuse("pause");
      next.phase = RolloutPhase::kPaused;
      action = "paused";
      break;
    case RolloutStep::kResume:
      if (now.phase != RolloutPhase::kPaused) return refuse("resume");
      next.phase = RolloutPhase::kRunning;
      next.stage_started_unix_ms = now_unix_ms();  // the stage's hold time starts again
      action = "resumed";
      break;
    case RolloutStep::kAbort:
      if (!now.active()) return refuse("abort");
      next.phase = RolloutPhase::kAborted;
      action = "aborted";
      if (reason.empty()) reason = "aborted by " + std::string(actor);
      next.reason = reason;
      break;
  }
  next.record(RolloutRecord{now_iso8601(), stage, action, std::string(actor), std::move(reason),
                            std::move(signals)});
  return next;
}

void append_rollout_json(std::string& out, const Rollout& r) {
  out += "{\"candidate\":";
  json::append_int(out, r.candidate);
  out += ",\"baseline\":";
  json::append_int(out, r.baseline);
  out += ",\"phase\":";
  json::append_string(out, phase_name(r.phase));
  out += ",\"stage\":";
  json::append_int(out, static_cast<std::int64_t>(r.stage));
  out += ",\"stage_name\":";
  json::append_string(out, r.stage_name());
  out += ",\"canary_percent\":";
  json::append_double(out, r.canary_percent());
  out += ",\"started_unix_ms\":";
  json::append_int(out, r.started_unix_ms);
  out += ",\"stage_started_unix_ms\":";
  json::append_int(out, r.stage_started_unix_ms);
  out += ",\"reason\":";
  json::append_string(out, r.reason);
  out += ",\"policy\":";
  append_rollout_policy_json(out, r.policy);
  out += ",\"timeline\":[";
  for (std::size_t i = 0; i < r.timeline.size(); ++i) {
    if (i) out.push_back(',');
    append_record_json(out, r.timeline[i]);
  }
  out += "]}";
}

Result<Rollout> parse_rollout_json(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(json.data(), json.size()).get(root)) {
    return InvalidArgument(std::string("rollout: malformed JSON: ") +
                           simdjson::error_message(error));
  }
  Rollout r;
  std::int64_t stage = 0;
  if (root["candidate"].get_int64().get(r.candidate) ||
      root["baseline"].get_int64().get(r.baseline) || root["stage"].get_int64().get(stage) ||
      stage < 0) {
    return InvalidArgument("rollout: candidate, baseline and stage must be integers");
  }
  r.stage = static_cast<std::size_t>(stage);
  const std::string phase = string_field(root, "phase");
  bool known = false;
  for (const auto& [p, name] : kPhases) {
    if (name == phase) {
      r.phase = p;
      known = true;
    }
  }
  if (!known) return InvalidArgument("rollout: unknown phase");
  simdjson::dom::element policy;
  if (root["policy"].get(policy)) return InvalidArgument("rollout: no policy");
  auto parsed = parse_rollout_policy_json(simdjson::minify(policy));
  if (!parsed.ok()) return parsed.status();
  r.policy = std::move(parsed).value();
  if (r.stage >= r.policy.stage_count()) return InvalidArgument("rollout: stage out of range");
  if (root["started_unix_ms"].get_int64().get(r.started_unix_ms) ||
      root["stage_started_unix_ms"].get_int64().get(r.stage_started_unix_ms)) {
    return InvalidArgument("rollout: started_unix_ms and stage_started_unix_ms must be integers");
  }
  r.reason = string_field(root, "reason");
  simdjson::dom::array timeline;
  if (!root["timeline"].get_array().get(timeline)) {
    for (auto e : timeline) {
      if (r.timeline.size() >= kMaxRolloutTimeline) break;
      RolloutRecord rec{string_field(e, "time"),   string_field(e, "stage"),
                        string_field(e, "action"), string_field(e, "actor"),
                        string_field(e, "reason"), {}};
      simdjson::dom::object signals;
      if (!e["signals"].get_object().get(signals)) {
        for (auto [k, v] : signals) {
          double d = 0;
          if (!v.get_double().get(d) && rec.signals.size() < 32) {
            rec.signals.emplace_back(std::string(k.substr(0, 64)), d);
          }
        }
      }
      r.timeline.push_back(std::move(rec));
    }
  }
  return r;
}

}  // namespace forklift
