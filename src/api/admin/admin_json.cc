#include "api/admin/admin_json.h"

#include <simdjson.h>

#include <cmath>

#include "common/file_util.h"
#include "common/json_writer.h"
#include "common/wall_clock.h"

namespace forklift {
namespace {

void append_selftest(std::string& out, const SelfTestReport& r) {
  out += "{\"cases\":";
  json::append_int(out, static_cast<std::int64_t>(r.cases));
  out += ",\"passed\":";
  json::append_int(out, static_cast<std::int64_t>(r.passed));
  out += ",\"failures\":[";
  for (std::size_t i = 0; i < r.failures.size(); ++i) {
    if (i) out.push_back(',');
    json::append_string(out, r.failures[i]);
  }
  out += "],\"seconds\":";
  json::append_double(out, r.duration_seconds);
  out.push_back('}');
}

}  // namespace

void append_model(std::string& out, const ModelState& m, bool details) {
  out += "{\"model_id\":";
  json::append_string(out, m.model_id);
  out += m.control.unloaded ? ",\"unloaded\":true" : ",\"unloaded\":false";
  out += ",\"serving\":[";
  bool first = true;
  for (const auto& [v, _] : m.serving) {
    if (!first) out.push_back(',');
    first = false;
    json::append_int(out, v);
  }
  out += "],\"deployment\":";
  append_deployment_json(out, m.control.deployment);
  out += ",\"can_roll_back\":";
  out += m.control.history.empty() ? "false" : "true";
  out += ",\"rollout\":";
  if (m.control.rollout) {
    append_rollout_json(out, *m.control.rollout);
  } else {
    out += "null";
  }
  out += ",\"versions\":[";
  first = true;
  for (const auto& [v, st] : m.versions) {
    if (!first) out.push_back(',');
    first = false;
    out += "{\"version\":";
    json::append_int(out, v);
    out += ",\"state\":\"";
    out += to_string(st.state);
    out += "\",\"message\":";
    json::append_string(out, details || st.message.empty()
                                 ? st.message
                                 : std::string("(the reason is shown with the admin token)"));
    out += ",\"load_seconds\":";
    json::append_double(out, st.load_seconds);
    out += ",\"memory_bytes\":";
    json::append_int(out, static_cast<std::int64_t>(st.memory_bytes));
    if (!st.engine.name.empty()) {
      out += ",\"engine\":";
      json::append_string(out, st.engine.name);
      out += ",\"engine_note\":";
      json::append_string(out, details ? st.engine.note
                                       : std::string("(the reason is shown with the admin token)"));
    }
    out += m.serving.contains(v) ? ",\"in_memory\":true" : ",\"in_memory\":false";
    out += m.cold.contains(v) ? ",\"on_demand\":true" : ",\"on_demand\":false";
    out += ",\"selftest\":";
    if (st.selftest) {
      SelfTestReport report = *st.selftest;
      if (!details && !report.failures.empty()) {
        report.failures = {"(failures are shown with the admin token)"};
      }
      append_selftest(out, report);
    } else {
      out += "null";
    }
    out.push_back('}');
  }
  out += "]}";
}

void append_shadow_comparisons(std::string& out, std::string_view model_id,
                               const MetricsRegistry& metrics) {
  out += "\"shadow_comparisons\":[";
  bool first = true;
  for (const auto& [key, s] : metrics.shadows()) {
    if (std::get<0>(key) != model_id) continue;
    if (!first) out.push_back(',');
    first = false;
    out += "{\"primary_version\":";
    json::append_int(out, std::get<1>(key));
    out += ",\"shadow_version\":";
    json::append_int(out, std::get<2>(key));
    const std::pair<const char*, std::uint64_t> fields[] = {
        {"agree", s->agree.load(std::memory_order_relaxed)},
        {"disagree", s->disagree.load(std::memory_order_relaxed)},
        {"errors", s->errors.load(std::memory_order_relaxed)},
        {"dropped", s->dropped.load(std::memory_order_relaxed)}};
    for (const auto& [name, n] : fields) {
      out += ",\"";
      out += name;
      out += "\":";
      json::append_int(out, static_cast<std::int64_t>(n));
    }
    out.push_back('}');
  }
  out.push_back(']');
}

void append_drift(std::string& out, const ModelState& m) {
  out += "\"drift\":[";
  bool first = true;
  const std::int64_t now = now_unix_ms();
  for (const auto& [v, loaded] : m.serving) {
    if (!loaded->drift) continue;
    const DriftReading d = loaded->drift->read(now);
    if (!first) out.push_back(',');
    first = false;
    out += "{\"version\":";
    json::append_int(out, v);
    out += ",\"rows\":";
    json::append_int(out, static_cast<std::int64_t>(d.rows));
    out += ",\"output_psi\":";
    json::append_double(out, d.output_psi.value_or(std::nan("")));
    out += ",\"features\":[";
    for (std::size_t i = 0; i < d.features.size(); ++i) {
      const FeatureDrift& f = d.features[i];
      if (i) out.push_back(',');
      out += "{\"feature\":";
      json::append_string(out, f.name);
      out += ",\"psi\":";
      json::append_double(out, f.psi);
      out += ",\"missing_rate\":";
      json::append_double(out, f.missing_rate);
      out += ",\"reference_missing_rate\":";
      json::append_double(out, f.reference_missing_rate);
      out.push_back('}');
    }
    out += "]}";
  }
  out.push_back(']');
}

std::string rollout_answer(const ModelState& m) {
  std::string out = "{\"model_id\":";
  json::append_string(out, m.model_id);
  out += ",\"deployment\":";
  append_deployment_json(out, m.control.deployment);
  out += ",\"rollout\":";
  if (m.control.rollout) {
    append_rollout_json(out, *m.control.rollout);
  } else {
    out += "null";
  }
  out.push_back('}');
  return out;
}

std::string deployment_answer(std::string_view model_id, const Deployment& d) {
  std::string out = "{\"model_id\":";
  json::append_string(out, model_id);
  out += ",\"deployment\":";
  append_deployment_json(out, d);
  out.push_back('}');
  return out;
}

const char* repository_state(VersionState state) {
  // The repository extension's states; the version's own state is the one truth.
  if (state == VersionState::kReady) return "READY";
  if (state == VersionState::kLoading || state == VersionState::kSelfTesting) return "LOADING";
  return "UNAVAILABLE";
}

std::string repository_index(const RegistrySnapshot& snapshot) {
  std::string out = "[";
  bool first = true;
  for (const auto& [id, m] : snapshot.models) {
    for (const auto& [v, st] : m.versions) {
      if (!first) out.push_back(',');
      first = false;
      out += "{\"name\":";
      json::append_string(out, id);
      out += ",\"version\":\"" + std::to_string(v) + "\",\"state\":\"";
      out += repository_state(st.state);
      out += "\",\"reason\":";
      json::append_string(out, st.message);
      out.push_back('}');
    }
  }
  return out + "]";
}

void append_lineage(std::string& out, const ModelState& m,
                    const std::filesystem::path& repository) {
  constexpr std::uintmax_t kMaxLineageBytes = 1 << 20;
  out += "\"lineage\":{";
  bool first = true;
  simdjson::dom::parser parser;
  for (const auto& [v, st] : m.versions) {
    const std::filesystem::path file = repository / m.model_id / std::to_string(v) / "lineage.json";
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) continue;
    // Within its own version's directory: a link to another model's files is not followed.
    auto opened = open_regular_within(file.parent_path(), file, kMaxLineageBytes);
    if (!opened.ok()) continue;
    const std::string text = read_up_to(opened->fd.get(), static_cast<std::size_t>(opened->size));
    simdjson::dom::element root;
    simdjson::dom::object object;
    if (parser.parse(text).get(root) || root.get_object().get(object)) continue;
    if (!first) out.push_back(',');
    first = false;
    out += "\"" + std::to_string(v) + "\":";
    out += simdjson::minify(root);  // re-serialised from the parse: always valid JSON
  }
  out += "}";
}

}  // namespace forklift
