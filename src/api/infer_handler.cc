// POST /infer {"model_id": "eta", "version": 3?, "features": {...}} or "instances": [{...}, ...],
// and "explain": true for each row's feature contributions (explanation_json.h).
#include <string>

#include "api/async_answer.h"
#include "api/explanation_json.h"
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
  bool explain = false;
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
    } else if (key == "explain") {
      if (field.value().get_bool().get(env.explain)) {
        return InvalidArgument("'explain' must be true or false");
      }
    } else if (key == "features") {
      env.has_features = true;
    } else if (key == "instances") {
      env.has_instances = true;
    } else {
      return InvalidArgument(
          "unknown field '" + std::string(key) +
          "' (expected model_id, version, experiment_key, explain, features or instances)");
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
                  const std::string& request_id, const Explaining* explaining, std::string& out) {
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
  if (explaining != nullptr) {
    const auto& e = explaining->explanation;
    if (batch) {
      out += ",\"explanations\":[";
      for (std::size_t r = 0; r < outputs.size(); ++r) {
        if (r) out.push_back(',');
        append_explanation(out, e, r, explaining->names);
      }
      out.push_back(']');
    } else {
      out += ",\"explanation\":";
      append_explanation(out, e, 0, explaining->names);
    }
  }
  out += ",\"request_id\":";
  json::append_string(out, request_id);
  out.push_back('}');
}

}  // namespace

void handle_infer(const ApiContext& ctx, const HttpRequest& req, HttpResponse& res) {
  const auto start = std::chrono::steady_clock::now();
  simdjson::ondemand::document doc;
  if (Status s = start_document(*req.body, doc); !s.ok()) return respond_error(res, s);
  Envelope env;
  if (Status s = read_envelope(doc, env); !s.ok()) return respond_error(res, s);

  auto target = ctx.inference->route(env.model_id, env.version, env.experiment_key);
  if (!target.ok()) return respond_error(res, target.status());
  res.model_id = target->model->model_id;
  res.model_version = target->model->version;
  Batch batch(target->schema());
  if (Status s = parse_payload(doc, env, batch); !s.ok()) {
    return respond_error(res, ctx.inference->refuse(*target, std::move(s), start));
  }
  std::shared_ptr<Explaining> explaining;
  if (env.explain) {
    explaining = std::make_shared<Explaining>();
    if (Status s = explain_before_predicting(*target->model, batch, *explaining); !s.ok()) {
      return respond_error(res, ctx.inference->refuse(*target, std::move(s), start));
    }
  }
  infer_and_answer(
      *ctx.inference, std::move(target).value(), std::move(batch), start, req, res,
      [many = env.has_instances, explaining](const InferenceResult& result, HttpResponse& out) {
        out.model_id = result.model.model_id;
        out.model_version = result.model.version;
        if (!result.status.ok()) return respond_error(out, result.status);
        if (explaining && explaining->pending) {
          return respond_error(out, retry_for_explanation(result.model));
        }
        out.status = 200;
        write_answer(result.model, result.outputs, many, out.request_id, explaining.get(),
                     out.body);
      });
}

}  // namespace forklift
