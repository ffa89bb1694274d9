// POST /infer {"model_id": "eta", "version": 3?, "features": {...}} or "instances": [{...}, ...].
#include <string>

#include "api/handlers.h"
#include "api/json_request.h"
#include "common/json_writer.h"
#include "core/features_json.h"
#include "core/repository.h"

namespace forklift {
namespace {

using simdjson::ondemand::json_type;

struct Envelope {
  std::string model_id;
  std::optional<std::int64_t> version;
  std::string experiment_key;  // sticky routing key for splits (e.g. a rider id)
  bool has_features = false;
  bool has_instances = false;
};

Status parse_version_field(simdjson::ondemand::value v, std::optional<std::int64_t>& out) {
  json_type t;
  if (v.type().get(t)) return InvalidArgument("malformed JSON at 'version'");
  if (t == json_type::null) return Status::Ok();
  std::int64_t n = -1;
  if (t == json_type::number) {
    if (v.get_int64().get(n) || n < 1) n = -1;
  } else if (t == json_type::string) {
    std::string_view s;
    if (!v.get_string().get(s)) n = parse_version(s);
  }
  if (n < 1) return InvalidArgument("'version' must be a positive integer");
  out = n;
  return Status::Ok();
}

// First pass over the top level: who is asked, and which payload field is present.
Status read_envelope(simdjson::ondemand::document& doc, Envelope& env) {
  simdjson::ondemand::object obj;
  if (auto error = doc.get_object().get(obj)) {
    return InvalidArgument(error == simdjson::INCORRECT_TYPE
                               ? "the request body must be a JSON object"
                               : std::string("malformed JSON: ") + simdjson::error_message(error));
  }
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return InvalidArgument("malformed JSON");
    if (key == "model_id") {
      std::string_view id;
      if (field.value().get_string().get(id)) return InvalidArgument("'model_id' must be a string");
      env.model_id = std::string(id);
    } else if (key == "version") {
      if (Status s = parse_version_field(field.value(), env.version); !s.ok()) return s;
    } else if (key == "experiment_key") {
      std::string_view k;
      if (field.value().get_string().get(k) || k.size() > 256) {
        return InvalidArgument("'experiment_key' must be a string of at most 256 characters");
      }
      env.experiment_key = std::string(k);
    } else if (key == "features") {
      env.has_features = true;
    } else if (key == "instances") {
      env.has_instances = true;
    } else {
      return InvalidArgument(
          "unknown field '" + std::string(key) +
          "' (expected model_id, version, experiment_key, features or instances)");
    }
  }
  if (env.model_id.empty()) return InvalidArgument("'model_id' is required");
  if (env.has_features == env.has_instances) {
    return InvalidArgument("send exactly one of 'features' (one row) or 'instances' (a batch)");
  }
  return Status::Ok();
}

Status parse_payload(simdjson::ondemand::document& doc, const Envelope& env, Batch& batch) {
  doc.rewind();
  simdjson::ondemand::value payload;
  if (doc.find_field_unordered(env.has_features ? "features" : "instances").get(payload)) {
    return InvalidArgument("malformed JSON");
  }
  if (env.has_features) return parse_feature_object(payload, batch.schema(), batch.add_row());
  return parse_instances(payload, batch);
}

void write_answer(const LoadedModel& model, const std::vector<Value>& outputs, bool batch,
                  const std::string& request_id, std::string& out) {
  out.reserve(96 + outputs.size() * 12);
  out += "{\"model_id\":";
  json::append_string(out, model.model_id);
  out += ",\"version\":";
  json::append_int(out, model.version);
  if (batch) {
    out += ",\"outputs\":[";
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      if (i) out.push_back(',');
      json::append_value(out, outputs[i]);
    }
    out.push_back(']');
  } else {
    out += ",\"output\":";
    json::append_value(out, outputs.front());
  }
  out += ",\"request_id\":";
  json::append_string(out, request_id);
  out.push_back('}');
}

// A request waiting in its version's batching queue, and what it needs to be answered after.
struct QueuedInfer {
  ApiContext ctx;
  std::shared_ptr<const RegistrySnapshot> snapshot;
  std::shared_ptr<const LoadedModel> model;
  Batch batch;
  bool many = false;    // "instances": answer with "outputs"
  bool routed = false;  // no version asked: the deployment chose, so shadows apply
  std::chrono::steady_clock::time_point start;
  Status status;
  std::vector<Value> outputs;
};

// On the connection's loop, once the batching thread has predicted the request.
void answer_queued(QueuedInfer& q, HttpResponse& res) {
  record_outcome(*q.model, q.status, q.start, res);
  if (!q.status.ok()) return respond_error(res, q.status);
  res.status = 200;
  write_answer(*q.model, q.outputs, q.many, res.request_id, res.body);
  after_prediction(q.ctx, *q.snapshot, q.model, std::move(q.batch), q.outputs, res.request_id,
                   q.start, q.routed);
}

}  // namespace

void handle_infer(const ApiContext& ctx, const HttpRequest& req, HttpResponse& res) {
  const auto start = std::chrono::steady_clock::now();
  simdjson::ondemand::document doc;
  if (Status s = start_document(*req.body, doc); !s.ok()) return respond_error(res, s);
  Envelope env;
  if (Status s = read_envelope(doc, env); !s.ok()) return respond_error(res, s);

  const auto snapshot = ctx.registry->snapshot();
  auto resolved = snapshot->resolve(env.model_id, env.version, env.experiment_key);
  if (!resolved.ok()) return respond_error(res, resolved.status());
  const LoadedModel& model = **resolved;

  Batch batch(model.manifest.schema);
  Status status = parse_payload(doc, env, batch);
  if (status.ok() && model.batcher != nullptr && req.deferral != nullptr) {
    // Queued for a batched runtime call; this loop serves other connections meanwhile.
    auto q = std::make_shared<QueuedInfer>(QueuedInfer{ctx,
                                                       snapshot,
                                                       *resolved,
                                                       std::move(batch),
                                                       env.has_instances,
                                                       !env.version,
                                                       start,
                                                       Status::Ok(),
                                                       {}});
    model.batcher->submit(q->batch,
                          [q, resume = req.deferral->defer(ResponseDeferral::kReadTimeout)](
                              Status s, std::vector<Value> outputs) {
                            q->status = s.ok() ? std::move(s) : prediction_failure(*q->model, s);
                            q->outputs = std::move(outputs);
                            resume([q](HttpResponse& answer) { answer_queued(*q, answer); });
                          });
    return;
  }
  std::vector<Value> outputs;
  if (status.ok()) status = predict_guarded(model, batch, outputs);
  record_outcome(model, status, start, res);
  if (!status.ok()) return respond_error(res, status);
  res.status = 200;
  write_answer(model, outputs, env.has_instances, res.request_id, res.body);
  after_prediction(ctx, *snapshot, *resolved, std::move(batch), outputs, res.request_id, start,
                   !env.version);
}

}  // namespace forklift
