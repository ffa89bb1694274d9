// `forklift rollout start | status | pause | resume | abort`: the admin API's rollout endpoints.
#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/admin_commands.h"
#include "cli/exit_codes.h"
#include "common/json_writer.h"
#include "core/repository.h"
#include "core/rollout/rollout_policy.h"

namespace forklift {
namespace {

constexpr int kNotPromoted = 5;  // status --watch: rolled back, aborted, or no rollout
constexpr std::uintmax_t kMaxPolicyBytes = 1 << 20;

std::string path_of(const std::string& model_id, const char* tail = "") {
  return "/admin/models/" + model_id + "/rollout" + tail;
}

// A model id goes into the URL as it is: one that is not a model id (a '?', a '/') would name
// another resource.
bool usable_model_id(const std::string& model_id) {
  if (is_valid_model_id(model_id)) return true;
  std::fprintf(stderr, "forklift: '%s' is not a model id (letters, digits, _ - .)\n",
               model_id.substr(0, 128).c_str());
  return false;
}

// The policy fields to send: the file's, or the flags'. The server applies them over the
// version's own policy (its model.yaml rollout:, else the defaults). Nothing when neither is
// given.
Result<std::string> policy_from(const RolloutStartOptions& o) {
  const bool flags = !o.steps.empty() || o.hold_seconds >= 0 || o.no_shadow;
  if (!o.policy_file.empty() && flags) {
    return InvalidArgument("give --policy, or --steps, --hold-seconds and --no-shadow; not both");
  }
  if (!o.policy_file.empty()) {
    std::ifstream in(o.policy_file, std::ios::binary);
    std::ostringstream text;
    if (in) text << in.rdbuf();
    if (!in || text.str().size() > kMaxPolicyBytes) {
      return InvalidArgument(o.policy_file + ": cannot be read, or is larger than 1 MiB");
    }
    if (auto parsed = parse_rollout_policy_json(text.str()); !parsed.ok()) {
      return InvalidArgument(o.policy_file + ": " + parsed.status().message());
    }
    return text.str();
  }
  if (!flags) return std::string();
  std::string json = "{";
  if (o.no_shadow) json += "\"shadow\":false";
  if (!o.steps.empty() || o.hold_seconds >= 0) {
    if (json.size() > 1) json += ",";
    json += "\"canary\":{";
    if (!o.steps.empty()) {
      json += "\"steps\":[";
      for (std::size_t i = 0; i < o.steps.size(); ++i) {
        if (i) json += ",";
        json::append_double(json, o.steps[i]);
      }
      json += "]";
    }
    if (o.hold_seconds >= 0) {
      if (!o.steps.empty()) json += ",";
      json += "\"hold_seconds\":";
      json::append_double(json, o.hold_seconds);
    }
    json += "}";
  }
  json += "}";
  // Checked against the defaults here; the server checks the merged policy again.
  if (auto parsed = parse_rollout_policy_json(json); !parsed.ok()) return parsed.status();
  return json;
}

std::string raw_text(simdjson::dom::element e, const char* key) {
  std::string_view v;
  return e[key].get_string().get(v) ? std::string() : std::string(v);
}

std::string entry_key(simdjson::dom::element e) {
  return raw_text(e, "time") + "|" + raw_text(e, "stage") + "|" + raw_text(e, "action") + "|" +
         raw_text(e, "reason");
}

// Prints the timeline's entries after the one printed last (`last`, updated); all of them when
// it is no longer there. (The timeline drops old entries, so positions do not identify one.)
void print_timeline(simdjson::dom::element rollout, std::string& last) {
  simdjson::dom::array timeline;
  if (rollout["timeline"].get_array().get(timeline)) return;
  std::vector<simdjson::dom::element> entries(timeline.begin(), timeline.end());
  std::size_t from = 0;
  for (std::size_t i = entries.size(); i-- > 0;) {
    if (!last.empty() && entry_key(entries[i]) == last) {
      from = i + 1;
      break;
    }
  }
  for (std::size_t i = from; i < entries.size(); ++i) {
    const simdjson::dom::element e = entries[i];
    std::printf("  %s  %-12s %-12s %s: %s\n", raw_text(e, "time").c_str(),
                raw_text(e, "stage").c_str(), raw_text(e, "action").c_str(),
                raw_text(e, "actor").c_str(), raw_text(e, "reason").c_str());
    last = entry_key(e);
  }
}

struct Summary {
  std::string phase;
  std::string last_printed;  // the timeline entry printed last
};

// Prints the answer's rollout (all of it, or the timeline entries after `printed`).
int print_rollout(const AdminAnswer& answer, Summary& summary, bool header) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(answer.body).get(root)) {
    std::fprintf(stderr, "forklift: the server's answer is not JSON\n");
    return kExitFailed;
  }
  const std::string id = raw_text(root, "model_id");
  simdjson::dom::element r;
  if (root["rollout"].get(r) || r.is_null()) {
    std::printf("%s: no rollout\n", id.c_str());
    summary.phase = "none";
    return 0;
  }
  std::int64_t candidate = 0;
  std::int64_t baseline = 0;
  double percent = 0;
  if (r["candidate"].get_int64().get(candidate) || r["baseline"].get_int64().get(baseline) ||
      r["canary_percent"].get_double().get(percent)) {
    std::fprintf(stderr, "forklift: unexpected answer from the server\n");
    return kExitFailed;
  }
  const std::string phase = raw_text(r, "phase");
  if (header || phase != summary.phase) {
    const bool active = phase == "running" || phase == "paused";
    if (active) {
      std::printf("%s: version %lld replacing version %lld: %s, stage %s (%g%% of traffic)\n",
                  id.c_str(), static_cast<long long>(candidate), static_cast<long long>(baseline),
                  phase.c_str(), raw_text(r, "stage_name").c_str(), percent);
    } else {
      std::printf("%s: version %lld replacing version %lld: %s\n", id.c_str(),
                  static_cast<long long>(candidate), static_cast<long long>(baseline),
                  phase.c_str());
    }
  }
  summary.phase = phase;
  print_timeline(r, summary.last_printed);
  return 0;
}

}  // namespace

int run_rollout_start(const AdminEndpoint& endpoint, const std::string& model_id,
                      const RolloutStartOptions& options) {
  if (!usable_model_id(model_id)) return kExitUsage;
  auto policy = policy_from(options);
  if (!policy.ok()) {
    std::fprintf(stderr, "forklift: %s\n", policy.status().message().c_str());
    return kExitUsage;
  }
  std::string body = "{";
  if (options.version > 0) body += "\"version\":" + std::to_string(options.version);
  if (!policy->empty()) {
    if (body.size() > 1) body += ",";
    body += "\"policy\":" + *policy;
  }
  body += "}";
  AdminAnswer answer;
  const std::string path = path_of(model_id) + (options.force ? "?force=true" : "");
  if (int rc = call_admin(endpoint, "POST", path, body, answer)) return rc;
  Summary summary;
  return print_rollout(answer, summary, true);
}

int run_rollout_status(const AdminEndpoint& endpoint, const std::string& model_id, bool watch) {
  if (!usable_model_id(model_id)) return kExitUsage;
  Summary summary;
  for (bool first = true;; first = false) {
    AdminAnswer answer;
    if (int rc = call_admin(endpoint, "GET", path_of(model_id), "", answer)) return rc;
    if (int rc = print_rollout(answer, summary, first)) return rc;
    std::fflush(stdout);
    const bool active = summary.phase == "running" || summary.phase == "paused";
    if (!watch || !active) {
      // For scripts that wait on a rollout: its own status when it ended without promoting.
      return watch && summary.phase != "succeeded" ? kNotPromoted : 0;
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
}

int run_rollout_step(const AdminEndpoint& endpoint, const std::string& model_id,
                     const std::string& step, const std::string& reason) {
  if (!usable_model_id(model_id)) return kExitUsage;
  std::string body;
  if (!reason.empty()) {
    body = "{\"reason\":";
    json::append_string(body, reason);
    body += "}";
  }
  AdminAnswer answer;
  if (int rc =
          call_admin(endpoint, "POST", path_of(model_id, ("/" + step).c_str()), body, answer)) {
    return rc;
  }
  Summary summary;
  return print_rollout(answer, summary, true);
}

}  // namespace forklift
