#include "api/admin/admin_json.h"

#include "common/json_writer.h"

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

std::string deployment_answer(std::string_view model_id, const Deployment& d) {
  std::string out = "{\"model_id\":";
  json::append_string(out, model_id);
  out += ",\"deployment\":";
  append_deployment_json(out, d);
  out.push_back('}');
  return out;
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
      // The repository extension's states; the version's own state is the one truth.
      out += st.state == VersionState::kReady ? "READY"
             : st.state == VersionState::kLoading || st.state == VersionState::kSelfTesting
                 ? "LOADING"
                 : "UNAVAILABLE";
      out += "\",\"reason\":";
      json::append_string(out, st.message);
      out.push_back('}');
    }
  }
  return out + "]";
}

}  // namespace forklift
