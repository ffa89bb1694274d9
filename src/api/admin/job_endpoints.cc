#include "api/admin/job_endpoints.h"

#include <simdjson.h>

#include "api/route_util.h"
#include "common/json_writer.h"
#include "training/job_queue.h"

namespace forklift {
namespace {

using training::JobRecord;

constexpr std::size_t kMaxBodyBytes = 4096;

// `details`: the caller has the admin token. Without it a job's reason is left out: it may name
// paths and quote what a team's code printed (as a version's failure message is left out).
std::string job_json(const JobRecord& r, bool with_history, bool details) {
  std::string j = "{\"id\":";
  json::append_string(j, r.id);
  j += ",\"model_id\":";
  json::append_string(j, r.model_id);
  j += ",\"state\":";
  json::append_string(j, training::to_string(r.state));
  j += ",\"actor\":";
  json::append_string(j, r.actor);
  j += ",\"trigger\":";
  json::append_string(j, r.trigger);
  j += ",\"kind\":";
  json::append_string(j, r.kind);
  j += ",\"parent\":";
  json::append_int(j, r.parent);
  j += ",\"version\":";
  json::append_int(j, r.version);
  j += ",\"created\":";
  json::append_string(j, r.created);
  j += ",\"started\":";
  json::append_string(j, r.started);
  j += ",\"finished\":";
  json::append_string(j, r.finished);
  j += ",\"progress\":{\"stage\":";
  json::append_string(j, r.progress.stage);
  j += ",\"done\":";
  json::append_int(j, static_cast<std::int64_t>(r.progress.done));
  j += ",\"total\":";
  json::append_int(j, static_cast<std::int64_t>(r.progress.total));
  j += ",\"metric\":";
  json::append_string(j, r.progress.metric);
  j += ",\"train\":";
  json::append_double(j, r.progress.train_value);
  j += ",\"holdout\":";
  json::append_double(j, r.progress.holdout_value);
  j += "},\"reason\":";
  json::append_string(j, details || r.reason.empty()
                             ? r.reason
                             : std::string("(the reason is shown with the admin token)"));
  j += ",\"metric\":";
  json::append_string(j, r.metric);
  j += ",\"holdout\":";
  json::append_double(j, r.holdout);
  j += ",\"parent_holdout\":";
  json::append_double(j, r.parent_holdout);
  j += ",\"cancel_requested\":";
  j += r.cancel_requested ? "true" : "false";
  if (with_history) {
    j += ",\"history\":[";
    for (std::size_t i = 0; i < r.history.size(); ++i) {
      if (i) j.push_back(',');
      json::append_double(j, r.history[i]);
    }
    j += "]";
  }
  j += "}";
  return j;
}

void no_jobs(const AdminCall& call) {
  call.res.json(404, json::error_body("this server runs no training jobs (start it with "
                                      "--training-jobs N)"));
}

void post_job(const AdminCall& call, training::JobQueue& jobs) {
  const std::string empty;
  const std::string& text = call.req.body ? *call.req.body : empty;
  if (text.size() > kMaxBodyBytes) {
    return call.res.json(413, json::error_body("the body is larger than 4 KiB"));
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::object body;
  if (parser.parse(text).get(root) || root.get_object().get(body)) {
    return call.res.json(
        400, json::error_body("malformed JSON; send {\"model\": \"<id>\"} and optionally "
                              "\"parent\": N"));
  }
  std::string_view model;
  std::string_view kind = "train";
  std::int64_t parent = 0;
  for (auto field : body) {
    if (field.key == "kind") {
      if (field.value.get_string().get(kind) || (kind != "train" && kind != "snapshot")) {
        return call.res.json(400, json::error_body("'kind' must be \"train\" or \"snapshot\""));
      }
    } else if (field.key == "model") {
      if (field.value.get_string().get(model)) {
        return call.res.json(400, json::error_body("'model' must be a string"));
      }
    } else if (field.key == "parent") {
      if (field.value.get_int64().get(parent) || parent < 1) {
        return call.res.json(400, json::error_body("'parent' must be a positive integer"));
      }
    } else {
      return call.res.json(
          400, json::error_body("unknown field (the fields are 'model', 'parent' and 'kind')"));
    }
  }
  if (model.empty()) return call.res.json(400, json::error_body("'model' is required"));
  if (kind == "snapshot") {
    // The version: `parent`, else the newest serving one that learns online.
    std::shared_ptr<const LoadedModel> version;
    const auto snapshot = call.ctx.registry->snapshot();
    const auto m = snapshot->models.find(std::string(model));
    if (m != snapshot->models.end()) {
      for (const auto& [v, loaded] : m->second.serving) {
        if (loaded->learner != nullptr && (parent == 0 || v == parent)) version = loaded;
      }
    }
    if (!version) {
      return respond_error(
          call.res,
          NotFound("model '" + std::string(model) + "' has no serving version that learns online" +
                   (parent > 0 ? " as version " + std::to_string(parent) : std::string())));
    }
    auto job = jobs.submit_snapshot(std::move(version), call.actor, "manual");
    if (!job.ok()) return respond_error(call.res, job.status());
    return call.res.json(202, job_json(*job, false, true));
  }
  auto job = jobs.submit(std::string(model), parent, call.actor, "manual");
  if (!job.ok()) return respond_error(call.res, job.status());
  call.res.json(202, job_json(*job, false, true));
}

}  // namespace

void route_jobs(const AdminCall& call, std::string_view rest) {
  training::JobQueue* jobs = call.ctx.jobs;
  const std::string_view method = call.req.method;
  if (rest.empty() || rest == "/") {
    if (method != "GET" && method != "POST") return method_not_allowed(call.res, "GET, POST");
    if (jobs == nullptr) return no_jobs(call);
    if (method == "POST") return post_job(call, *jobs);
    std::string out = "{\"jobs\":[";
    bool first = true;
    for (const JobRecord& r : jobs->list()) {
      if (!first) out.push_back(',');
      first = false;
      out += job_json(r, false, call.with_token);
    }
    return call.res.json(200, out + "]}");
  }
  if (rest.front() != '/') {
    return call.res.json(404, json::error_body("no such route"));
  }
  rest.remove_prefix(1);
  const std::size_t slash = rest.find('/');
  const std::string id(rest.substr(0, slash));
  const std::string_view action =
      slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  if (id.empty() || id.size() > 64) return call.res.json(404, json::error_body("no such job"));
  if (jobs == nullptr) return no_jobs(call);
  if (action.empty()) {
    if (method != "GET") return method_not_allowed(call.res, "GET");
    auto job = jobs->get(id);
    if (!job) return call.res.json(404, json::error_body("no such job"));
    return call.res.json(200, job_json(*job, true, call.with_token));
  }
  if (action == "logs") {
    if (method != "GET") return method_not_allowed(call.res, "GET");
    if (!call.with_token) {
      return call.res.json(403, json::error_body("a job's log is shown with the admin token: it "
                                                 "may hold what a team's code printed"));
    }
    auto lines = jobs->logs(id);
    if (!lines) return call.res.json(404, json::error_body("no such job"));
    std::string out = "{\"lines\":[";
    for (std::size_t i = 0; i < lines->size(); ++i) {
      if (i) out.push_back(',');
      json::append_string(out, (*lines)[i]);
    }
    return call.res.json(200, out + "]}");
  }
  if (action == "cancel") {
    if (method != "POST") return method_not_allowed(call.res, "POST");
    auto job = jobs->cancel(id, call.actor);
    if (!job.ok()) return respond_error(call.res, job.status());
    return call.res.json(200, job_json(*job, false, true));
  }
  call.res.json(404, json::error_body("no such route"));
}

}  // namespace forklift
