// Open Inference Protocol v2 (REST): model metadata, model ready, server metadata and infer. The
// body is decoded by api/v2/tensor_json.h and mapped to rows by core/tensor_rows.h.
#include <optional>
#include <string>
#include <vector>

#include "api/async_answer.h"
#include "api/handlers.h"
#include "api/v2/tensor_json.h"
#include "common/json_writer.h"
#include "core/tensor_rows.h"

namespace forklift {
namespace {

constexpr std::string_view kServerName = "forklift";
constexpr std::string_view kServerVersion = "0.1.0";

std::string_view datatype_of(ValueType t) {
  switch (t) {
    case ValueType::kFloat:
    case ValueType::kFloatVector:
      return "FP32";
    case ValueType::kInt:
      return "INT64";
    case ValueType::kBool:
      return "BOOL";
    case ValueType::kString:
      return "BYTES";
  }
  return "FP32";
}

void write_tensor_metadata(std::string& out, std::string_view name, ValueType type,
                           std::size_t length) {
  out += "{\"name\":";
  json::append_string(out, name);
  out += ",\"datatype\":\"";
  out += datatype_of(type);
  out += type == ValueType::kFloatVector ? "\",\"shape\":[-1," + std::to_string(length) + "]}"
                                         : std::string("\",\"shape\":[-1]}");
}

// The v2 answer: one output tensor, shape [N] (or [N, length] for a float_vector).
void write_v2_answer(const LoadedModel& model, const std::vector<Value>& outputs,
                     std::string_view id, std::string& out) {
  const OutputSpec& output = model.schema->output;
  out += "{\"model_name\":";
  json::append_string(out, model.model_id);
  out += ",\"model_version\":\"" + std::to_string(model.version) + "\",\"id\":";
  json::append_string(out, id);
  out += ",\"outputs\":[{\"name\":";
  json::append_string(out, output.name);
  out += ",\"datatype\":\"";
  out += datatype_of(output.type);
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
  out += "]}]}";
}

Status check_requested_outputs(const V2Request& request, const LoadedModel& model) {
  const OutputSpec& output = model.schema->output;
  for (const auto& name : request.requested_outputs) {
    if (name != output.name) {
      return InvalidArgument("unknown output '" + name + "'; model '" + model.model_id +
                             "' produces '" + output.name + "'");
    }
  }
  return Status::Ok();
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
  Status status = check_requested_outputs(request, *target->model);
  if (status.ok()) status = tensors_to_batch(request.inputs, batch);
  if (!status.ok()) return respond_error(res, ctx.inference->refuse(*target, status, start));

  std::string id = request.id.empty() ? res.request_id : std::move(request.id);
  infer_and_answer(*ctx.inference, std::move(target).value(), std::move(batch), start, req, res,
                   [id = std::move(id)](const InferenceResult& result, HttpResponse& out) {
                     out.model_id = result.model.model_id;
                     out.model_version = result.model.version;
                     if (!result.status.ok()) return respond_error(out, result.status);
                     out.status = 200;
                     write_v2_answer(result.model, result.outputs, id, out.body);
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
  for (const auto& [v, _] : state.serving) {
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
  const auto snapshot = ctx.registry->snapshot();
  auto resolved = snapshot->resolve(model_id, version);
  // An unknown model or version is a 404; a known one that cannot serve is "ready": false.
  const auto model = snapshot->models.find(model_id);
  if (model == snapshot->models.end() || (version && !model->second.versions.contains(*version))) {
    return respond_error(res, resolved.status());
  }
  std::string body = "{\"name\":";
  json::append_string(body, model_id);
  body += resolved.ok() ? ",\"ready\":true}" : ",\"ready\":false}";
  res.json(resolved.ok() ? 200 : 503, std::move(body));
}

void handle_v2_server_metadata(HttpResponse& res) {
  std::string body = "{\"name\":\"";
  body += kServerName;
  body += "\",\"version\":\"";
  body += kServerVersion;
  body += "\",\"extensions\":[]}";
  res.json(200, std::move(body));
}

}  // namespace forklift