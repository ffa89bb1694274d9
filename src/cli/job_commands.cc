// `forklift jobs list | show | logs | cancel | run`: the admin API's training jobs.
#include <simdjson.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

#include "cli/admin_commands.h"
#include "cli/exit_codes.h"
#include "common/json_writer.h"
#include "core/repository.h"

namespace forklift {
namespace {

constexpr int kNotPublished = 5;  // run --wait, show --watch: the job ended without a version

// What the server sends may quote a team's code: control characters (terminal escapes) are
// printed as '?'.
std::string printable(std::string_view v) {
  std::string out(v);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) c = '?';
  }
  return out;
}

std::string text(simdjson::dom::element e, const char* key) {
  std::string_view v;
  return e[key].get_string().get(v) ? std::string() : printable(v);
}

std::int64_t integer(simdjson::dom::element e, const char* key) {
  std::int64_t v = 0;
  return e[key].get_int64().get(v) ? 0 : v;
}

double number(simdjson::dom::element e, const char* key) {
  double v = 0;
  return e[key].get_double().get(v) ? std::nan("") : v;
}

// A job id goes into the URL as it is: only the characters job ids are made of.
bool usable_job_id(const std::string& id) {
  const bool ok = !id.empty() && id.size() <= 64 &&
                  id.find_first_not_of(
                      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789_-") == std::string::npos;
  if (!ok) std::fprintf(stderr, "forklift: '%s' is not a job id\n", id.substr(0, 64).c_str());
  return ok;
}

bool parse(const AdminAnswer& answer, simdjson::dom::parser& parser, simdjson::dom::element& root) {
  if (parser.parse(answer.body).get(root)) {
    std::fprintf(stderr, "forklift: the server's answer is not JSON\n");
    return false;
  }
  return true;
}

bool ended(const std::string& state) {
  return state != "queued" && state != "running";
}

// A job's progress as one phrase: "training 12/30, held-out rmse 78.6".
std::string progress_text(simdjson::dom::element p) {
  std::string out = text(p, "stage");
  if (integer(p, "total") > 0) {
    out += " " + std::to_string(integer(p, "done")) + "/" + std::to_string(integer(p, "total"));
  }
  if (const double h = number(p, "holdout"); !std::isnan(h)) {
    char buf[64];
    std::snprintf(buf, sizeof buf, ", held-out %s %.6g", text(p, "metric").c_str(), h);
    out += buf;
  }
  return out;
}

// One line per job: id, model, state, progress or outcome.
void print_job_line(simdjson::dom::element j) {
  const std::string state = text(j, "state");
  simdjson::dom::element p;
  const std::string detail =
      state == "running" && !j["progress"].get(p) ? progress_text(p) : text(j, "reason");
  std::string what = text(j, "kind");
  if (text(j, "trigger") != "manual") what += " (" + text(j, "trigger") + ")";
  std::printf("%-28s %-16s %-20s %-10s %s\n", text(j, "id").c_str(), text(j, "model_id").c_str(),
              what.c_str(), state.c_str(), detail.c_str());
}

// Follows job `id` until it ends, printing its progress; the exit status of run --wait.
int follow(const AdminEndpoint& endpoint, const std::string& id) {
  std::string last;
  for (;;) {
    AdminAnswer answer;
    if (int rc = call_admin(endpoint, "GET", "/admin/jobs/" + id, "", answer)) return rc;
    simdjson::dom::parser parser;
    simdjson::dom::element j;
    if (!parse(answer, parser, j)) return kExitFailed;
    std::string line;
    const std::string state = text(j, "state");
    simdjson::dom::element p;
    if (!j["progress"].get(p)) line = state + ": " + progress_text(p);
    if (line != last) {
      std::printf("  %s\n", line.c_str());
      std::fflush(stdout);
      last = line;
    }
    if (ended(state)) {
      std::printf("job %s %s: %s\n", id.c_str(), state.c_str(), text(j, "reason").c_str());
      return state == "published" ? 0 : kNotPublished;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

int run_jobs_list(const AdminEndpoint& endpoint) {
  AdminAnswer answer;
  if (int rc = call_admin(endpoint, "GET", "/admin/jobs", "", answer)) return rc;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (!parse(answer, parser, root)) return kExitFailed;
  simdjson::dom::array jobs;
  if (root["jobs"].get_array().get(jobs)) return kExitFailed;
  if (jobs.size() == 0) std::printf("no training jobs\n");
  for (simdjson::dom::element j : jobs) print_job_line(j);
  return 0;
}

int run_jobs_show(const AdminEndpoint& endpoint, const std::string& id, bool watch) {
  if (!usable_job_id(id)) return kExitUsage;
  if (watch) return follow(endpoint, id);
  AdminAnswer answer;
  if (int rc = call_admin(endpoint, "GET", "/admin/jobs/" + id, "", answer)) return rc;
  std::printf("%s\n", printable(answer.body).c_str());
  return 0;
}

int run_jobs_logs(const AdminEndpoint& endpoint, const std::string& id) {
  if (!usable_job_id(id)) return kExitUsage;
  AdminAnswer answer;
  if (int rc = call_admin(endpoint, "GET", "/admin/jobs/" + id + "/logs", "", answer)) return rc;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (!parse(answer, parser, root)) return kExitFailed;
  simdjson::dom::array lines;
  if (root["lines"].get_array().get(lines)) return kExitFailed;
  for (simdjson::dom::element l : lines) {
    std::string_view s;
    if (!l.get_string().get(s)) std::printf("%s\n", printable(s).c_str());
  }
  return 0;
}

int run_jobs_cancel(const AdminEndpoint& endpoint, const std::string& id) {
  if (!usable_job_id(id)) return kExitUsage;
  AdminAnswer answer;
  if (int rc = call_admin(endpoint, "POST", "/admin/jobs/" + id + "/cancel", "", answer)) {
    return rc;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element j;
  if (!parse(answer, parser, j)) return kExitFailed;
  print_job_line(j);
  return 0;
}

int run_jobs_run(const AdminEndpoint& endpoint, const std::string& model_id, long parent, bool wait,
                 bool snapshot) {
  if (!is_valid_model_id(model_id)) {
    std::fprintf(stderr, "forklift: '%s' is not a model id\n", model_id.substr(0, 128).c_str());
    return kExitUsage;
  }
  std::string body = "{\"model\":";
  json::append_string(body, model_id);
  if (parent > 0) body += ",\"parent\":" + std::to_string(parent);
  if (snapshot) body += ",\"kind\":\"snapshot\"";
  body += "}";
  AdminAnswer answer;
  if (int rc = call_admin(endpoint, "POST", "/admin/jobs", body, answer)) return rc;
  simdjson::dom::parser parser;
  simdjson::dom::element j;
  if (!parse(answer, parser, j)) return kExitFailed;
  const std::string id = text(j, "id");
  std::printf("queued job %s for %s\n", id.c_str(), model_id.c_str());
  std::fflush(stdout);
  return wait ? follow(endpoint, id) : 0;
}

}  // namespace forklift
