// Open Inference Protocol v2 (REST): model metadata, model ready, server metadata and infer. The
// body is decoded by api/v2/tensor_json.h and mapped to rows by core/tensor_rows.h.
#include <optional>
#include <string>
#include <vector>

#include "api/async_answer.h"
#include "api/explanation_json.h"
#include "api/handlers.h"
#include "api/v2/tensor_json.h"
#include "common/json_writer.h"
#include "core/tensor.h"
#include "core/tensor_rows.h"

namespace forklift {
namespace {

constexpr std::string_view kServerName = "forklift";
constexpr std::string_view kServerVersion = FORKLIFT_VERSION;

void write_tensor_metadata(std::string& out, std::string_view name, ValueType type,
                           std::size_t length) {
  out += "{\"name\":";
  json::append_string(out, name);
  out += ",\"datatype\":\"";
  out += datatype_name(type);
  out += type == ValueType::kFloatVector ? "\",\"shape\":[-1," + std::to_string(length) + "]}"
                                         : std::string("\",\"shape\":[-1]}");
}

// With `explain`, a second output tensor "contributions", FP64, shape [N, columns + 1] (or [N,
// groups, columns + 1] with several output groups): each input column's contribution and last
// the bias; its parameter "columns" names them, comma-separated.
void write_contributions(const Model::Explanation& e, const Schema& schema, std::size_t rows,
                         std::string& out) {
  out += ",{\"name\":\"contributions\",\"datatype\":\"FP64\",\"shape\":[" + std::to_string(rows);
  if (e.groups > 1) out += "," + std::to_string(e.groups);
  out += "," + std::to_string(e.columns + 1) + "],\"parameters\":{\"columns\":";
  std::string names;
  for (const std::string& n : column_names(schema)) names += n + ",";
  json::append_string(out, names + "bias");
  out += "},\"data\":[";
  for (std::size_t i = 0; i < e.values.size(); ++i) {
    if (i) out.push_back(',');
    json::append_double(out, e.values[i]);
  }
  out += "]}";
}

// The v2 answer: one output tensor, shape [N] (or [N, length] for a float_vector), and the
// contributions when asked for.
void write_v2_answer(const LoadedModel& model, const std::vector<Value>& outputs,
                     std::string_view id, const Model::Explanation* explanation, std::string& out) {
  const OutputSpec& output = model.schema->output;
  out += "{\"model_name\":";
  json::append_string(out, model.model_id);
  out += ",\"model_version\":\"" + std::to_string(model.version) + "\",\"id\":";
  json::append_string(out, id);
  out += ",\"outputs\":[{\"name\":";
  json::append_string(out, output.name);
  out += ",\"datatype\":\"";
  out += datatype_name(output.type);
  out += "\",\"shape\":[" + std::to_string(outputs.size());
  if (output.type == ValueType::kFloatVector) out += "," + std::to_string(output.length);
  out += "],\"data\":[";
  bool first = true;
  for (const Value& v : outputs) {
    if (const auto* vec = std::get_if<std::vector<float>>(&v)) {
      for (float f : *vec) {
        if (!first) out.push_back(',');
        first = false;
        json::append_double(out, f);
      }
      continue;
    }
    if (!first) out.push_back(',');
    first = false;
    json::append_value(out, v);
  }
  out += "]}";
  if (explanation != nullptr) write_contributions(*explanation, *model.schema, outputs.size(), out);
  out += "]}";
}

}  // namespace

void handle_v2_infer(const ApiContext& ctx, std::string_view model_id,
                     std::optional<std::int64_t> version, const HttpRequest& req,
                     HttpResponse& res) {
  const auto start = std::chrono::steady_clock::now();
  V2Request request;
  if (Status s = parse_v2_request(*req.body, request); !s.ok()) return respond_error(res, s);
  auto target = ctx.inference->route(model_id, version, request.experiment_key);
  if (!target.ok()) return respond_error(res, target.status());
  res.model_id = target->model->model_id;
  res.model_version = target->model->version;
  Batch batch(target->schema());
  Status status = check_requested_outputs(request.requested_outputs, target->model->schema->output,
                                          target->model->model_id);
  if (status.ok()) status = tensors_to_batch(request.inputs, batch);
  if (!status.ok()) return respond_error(res, ctx.inference->refuse(*target, status, start));

  // Explanations, computed before the prediction (explanation_json.h).
  std::shared_ptr<Explaining> explained;
  if (request.explain) {
    explained = std::make_shared<Explaining>();
    if (Status s = explain_before_predicting(*target->model, batch, *explained); !s.ok()) {
      return respond_error(res, ctx.inference->refuse(*target, std::move(s), start));
    }
  }
  std::string id = request.id.empty() ? res.request_id : std::move(request.id);
  infer_and_answer(
      *ctx.inference, std::move(target).value(), std::move(batch), start, req, res,
      [id = std::move(id), explained](const InferenceResult& result, HttpResponse& out) {
        out.model_id = result.model.model_id;
        out.model_version = result.model.version;
        if (!result.status.ok()) return respond_error(out, result.status);
        if (explained && explained->pending) {
          return respond_error(out, retry_for_explanation(result.model));
        }
        out.status = 200;
        write_v2_answer(result.model, result.outputs, id,
                        explained ? &explained->explanation : nullptr, out.body);
      });
}

void handle_v2_model_metadata(const ApiContext& ctx, std::string_view model_id,
                              std::optional<std::int64_t> version, HttpResponse& res) {
  const auto snapshot = ctx.registry->snapshot();
  auto resolved = snapshot->resolve(model_id, version);
  if (!resolved.ok()) return respond_error(res, resolved.status());
  const LoadedModel& model = **resolved;
  const ModelState& state = snapshot->models.find(model_id)->second;
  std::string& out = res.body;
  out += "{\"name\":";
  json::append_string(out, model.model_id);
  out += ",\"versions\":[";
  bool first = true;
  for (const std::int64_t v : state.servable_versions()) {
    out += first ? "\"" : ",\"";
    out += std::to_string(v) + "\"";
    first = false;
  }
  out += "],\"platform\":";
  json::append_string(out, model.platform);
  out += ",\"inputs\":[";
  const Schema& schema = model.manifest.schema;
  for (std::size_t i = 0; i < schema.features.size(); ++i) {
    if (i) out.push_back(',');
    write_tensor_metadata(out, schema.features[i].name, schema.features[i].type,
                          schema.features[i].length);
  }
  out += "],\"outputs\":[";
  write_tensor_metadata(out, schema.output.name, schema.output.type, schema.output.length);
  out += "]}";
  res.status = 200;
}

void handle_v2_model_ready(const ApiContext& ctx, std::string_view model_id,
                           std::optional<std::int64_t> version, HttpResponse& res) {
  // An unknown model or version is a 404; a known one that cannot serve is "ready": false.
  const auto ready = ctx.registry->snapshot()->model_ready(model_id, version);
  if (!ready.ok()) return respond_error(res, ready.status());
  std::string body = "{\"name\":";
  json::append_string(body, model_id);
  body += *ready ? ",\"ready\":true}" : ",\"ready\":false}";
  res.json(*ready ? 200 : 503, std::move(body));
}

void handle_v2_server_metadata(HttpResponse& res) {
  std::string body;
  body.reserve(96);  // (also keeps GCC 12's -Warray-bounds false positive on a short string away)
  body += "{\"name\":\"";
  body += kServerName;
  body += "\",\"version\":\"";
  body += kServerVersion;
  body += "\",\"extensions\":[]}";
  res.json(200, std::move(body));
}

}  // namespace forklift