// Open Inference Protocol v2 (REST): model metadata, model ready, server metadata and infer.
//
// A model's features map to input tensors in one of two ways:
//  * one tensor per feature, named after it, shape [N] or [N, 1] (or [N, length] for a
//    float_vector): what the model metadata advertises;
//  * when every feature is a scalar number, a single tensor of shape [N, F] whose columns are the
//    features in model.yaml's order (what XGBoost clients of KServe and MLServer send).
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "api/async_answer.h"
#include "api/handlers.h"
#include "api/json_request.h"
#include "common/json_writer.h"
#include "core/float_range.h"

namespace forklift {
namespace {

using simdjson::ondemand::json_type;

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

enum class Element { kFloat, kInt, kUInt, kBool, kBytes };

struct DatatypeInfo {
  Element element;
  double min;
  double max;
};

// The datatypes forklift accepts, with the range their values must fit.
std::optional<DatatypeInfo> datatype_info(std::string_view dt) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (dt == "FP32")
    return DatatypeInfo{Element::kFloat, -std::numeric_limits<float>::max(),
                        std::numeric_limits<float>::max()};
  if (dt == "FP64") return DatatypeInfo{Element::kFloat, -kInf, kInf};
  if (dt == "INT8") return DatatypeInfo{Element::kInt, -128, 127};
  if (dt == "INT16") return DatatypeInfo{Element::kInt, -32768, 32767};
  if (dt == "INT32") return DatatypeInfo{Element::kInt, -2147483648.0, 2147483647.0};
  if (dt == "INT64") return DatatypeInfo{Element::kInt, -kInf, kInf};
  if (dt == "UINT8") return DatatypeInfo{Element::kUInt, 0, 255};
  if (dt == "UINT16") return DatatypeInfo{Element::kUInt, 0, 65535};
  if (dt == "UINT32") return DatatypeInfo{Element::kUInt, 0, 4294967295.0};
  if (dt == "UINT64") return DatatypeInfo{Element::kUInt, 0, kInf};
  if (dt == "BOOL") return DatatypeInfo{Element::kBool, 0, 1};
  if (dt == "BYTES") return DatatypeInfo{Element::kBytes, 0, 0};
  return std::nullopt;
}

// One input tensor. Its elements, flattened row-major, are kept in the one vector of their
// element kind: 8 bytes a number instead of a 40-byte Value, so that the data of the largest body
// costs a small multiple of its bytes (JSON can write a number in 2).
struct Tensor {
  std::string name;
  std::string datatype;
  DatatypeInfo info{};
  std::vector<std::int64_t> shape;
  std::vector<double> floats;        // FP32, FP64
  std::vector<std::int64_t> ints;    // INT*, UINT*
  std::vector<std::uint8_t> bools;   // BOOL
  std::vector<std::string> strings;  // BYTES

  std::size_t size() const {
    switch (info.element) {
      case Element::kFloat:
        return floats.size();
      case Element::kInt:
      case Element::kUInt:
        return ints.size();
      case Element::kBool:
        return bools.size();
      case Element::kBytes:
        return strings.size();
    }
    return 0;
  }
  // Element i as a number, if this tensor holds numbers.
  std::optional<double> number(std::size_t i) const {
    if (info.element == Element::kFloat) return floats[i];
    if (info.element == Element::kInt || info.element == Element::kUInt) {
      return static_cast<double>(ints[i]);
    }
    return std::nullopt;
  }
};

Status read_element(simdjson::ondemand::value v, Tensor& t) {
  const auto bad = [&](const std::string& what) {
    return InvalidArgument("input '" + t.name + "' (" + t.datatype + "): " + what);
  };
  json_type jt;
  if (v.type().get(jt)) return bad("malformed JSON in data");
  switch (t.info.element) {
    case Element::kBool: {
      bool b = false;
      if (jt != json_type::boolean || v.get_bool().get(b)) return bad("data must be true or false");
      t.bools.push_back(b ? 1 : 0);
      return Status::Ok();
    }
    case Element::kBytes: {
      std::string_view s;
      if (jt != json_type::string || v.get_string().get(s)) return bad("data must be strings");
      t.strings.emplace_back(s);
      return Status::Ok();
    }
    case Element::kInt:
    case Element::kUInt: {
      std::int64_t i = 0;
      if (jt != json_type::number || v.get_int64().get(i)) return bad("data must be integers");
      if (static_cast<double>(i) < t.info.min || static_cast<double>(i) > t.info.max) {
        return bad("value " + std::to_string(i) + " is out of range");
      }
      t.ints.push_back(i);
      return Status::Ok();
    }
    case Element::kFloat: {
      double d = 0;
      if (jt != json_type::number || v.get_double().get(d)) return bad("data must be numbers");
      if (d < t.info.min || d > t.info.max) return bad("a value is out of range");
      t.floats.push_back(d);
      return Status::Ok();
    }
  }
  return bad("unsupported");
}

// Reads nested or flat tensor data, in row-major order.
Status read_data(simdjson::ondemand::value v, Tensor& t, int depth) {
  if (depth > 32) return InvalidArgument("input '" + t.name + "': data is nested too deeply");
  json_type jt;
  if (v.type().get(jt)) return InvalidArgument("input '" + t.name + "': malformed JSON in data");
  if (jt != json_type::array) return read_element(v, t);
  simdjson::ondemand::array arr;
  if (v.get_array().get(arr)) return InvalidArgument("input '" + t.name + "': malformed data");
  for (auto e : arr) {
    simdjson::ondemand::value ev;
    if (e.get(ev)) return InvalidArgument("input '" + t.name + "': malformed JSON in data");
    if (Status s = read_data(ev, t, depth + 1); !s.ok()) return s;
  }
  return Status::Ok();
}

constexpr std::size_t kMaxDimensions = 8;

// The product of the dimensions, or nothing when it overflows.
std::optional<std::size_t> element_count(const std::vector<std::int64_t>& shape) {
  std::size_t n = 1;
  for (std::int64_t d : shape) {
    if (__builtin_mul_overflow(n, static_cast<std::size_t>(d), &n)) return std::nullopt;
  }
  return n;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

Status read_input(simdjson::ondemand::value v, Tensor& t, std::size_t index) {
  const std::string where = "inputs[" + std::to_string(index) + "]";
  simdjson::ondemand::object obj;
  if (v.get_object().get(obj)) return InvalidArgument(where + " must be an object");
  std::string_view s;
  if (obj.find_field_unordered("name").get_string().get(s)) {
    return InvalidArgument(where + ": 'name' is required and must be a string");
  }
  t.name = std::string(s);
  if (obj.find_field_unordered("datatype").get_string().get(s)) {
    return InvalidArgument("input '" + t.name + "': 'datatype' is required and must be a string");
  }
  t.datatype = std::string(s);
  auto info = datatype_info(t.datatype);
  if (!info) {
    return InvalidArgument("input '" + t.name + "': datatype '" + t.datatype +
                           "' is not supported (use FP32, FP64, INT8-64, UINT8-64, BOOL or BYTES)");
  }
  t.info = *info;
  simdjson::ondemand::array shape;
  if (obj.find_field_unordered("shape").get_array().get(shape)) {
    return InvalidArgument("input '" + t.name + "': 'shape' is required and must be an array");
  }
  for (auto d : shape) {
    std::int64_t dim = 0;
    // A 0 dimension would describe a tensor with no elements, whose other dimensions no data
    // bounds: refused, so every dimension is at most the element count the data justifies.
    if (d.get_int64().get(dim) || dim < 1) {
      return InvalidArgument("input '" + t.name + "': shape must hold positive integers");
    }
    if (t.shape.size() == kMaxDimensions) {
      return InvalidArgument("input '" + t.name + "': shape has more than " +
                             std::to_string(kMaxDimensions) + " dimensions");
    }
    t.shape.push_back(dim);
  }
  if (t.shape.empty()) return InvalidArgument("input '" + t.name + "': shape must not be empty");
  simdjson::ondemand::value data;
  if (obj.find_field_unordered("data").get(data)) {
    return InvalidArgument("input '" + t.name + "': 'data' is required");
  }
  // The data is read before anything is sized from the shape: its element count is bounded by
  // the body's bytes, and the shape must describe exactly that many elements.
  if (Status st = read_data(data, t, 0); !st.ok()) return st;
  const std::optional<std::size_t> expected = element_count(t.shape);
  if (!expected || *expected != t.size()) {
    return InvalidArgument("input '" + t.name + "': shape " + shape_text(t.shape) + " holds " +
                           (expected ? std::to_string(*expected) : std::string("too many")) +
                           " element(s) but data has " + std::to_string(t.size()));
  }
  return Status::Ok();
}

// Converts element `i` of `t` to the feature's type, or explains why it cannot be.
Status convert(const Tensor& t, std::size_t i, const FeatureSpec& spec, Value& out) {
  const auto bad = [&] {
    return InvalidArgument("input '" + t.name + "' has datatype " + t.datatype +
                           ", which cannot feed feature '" + spec.name + "' of type " +
                           std::string(to_string(spec.type)));
  };
  switch (spec.type) {
    case ValueType::kFloat: {
      const std::optional<double> d = t.number(i);
      if (!d) return bad();
      if (beyond_float_range(*d)) return float_range_error("a value of input '" + t.name + "'");
      out = *d;
      return Status::Ok();
    }
    case ValueType::kInt:
      if (t.info.element != Element::kInt && t.info.element != Element::kUInt) return bad();
      out = t.ints[i];
      return Status::Ok();
    case ValueType::kBool:
      if (t.info.element != Element::kBool) return bad();
      out = t.bools[i] != 0;
      return Status::Ok();
    case ValueType::kString:
      if (t.info.element != Element::kBytes) return bad();
      out = t.strings[i];
      return Status::Ok();
    case ValueType::kFloatVector:
      return bad();  // handled element-wise by the caller
  }
  return bad();
}

// Checks that `inputs` describe whole rows of the schema: names, shapes, no feature twice or
// missing. On success `feature_of[i]` is the feature tensor i feeds, or empty for the single
// [N, F] matrix. Nothing is allocated from the rows here: a request that cannot become a batch
// must be refused before one is sized (a single feature's tensor of N rows would otherwise size
// N rows of every feature).
Status check_inputs(const std::vector<Tensor>& inputs, const Schema& schema,
                    std::vector<std::size_t>& feature_of) {
  if (inputs.empty()) return InvalidArgument("'inputs' must not be empty");
  const std::int64_t rows = inputs.front().shape.front();
  for (const Tensor& t : inputs) {
    if (t.shape.front() != rows) {
      return InvalidArgument("input '" + t.name + "' has " + std::to_string(t.shape.front()) +
                             " rows but input '" + inputs.front().name + "' has " +
                             std::to_string(rows));
    }
  }
  if (inputs.size() == 1 && schema.index_of(inputs[0].name) < 0) {
    const Tensor& t = inputs[0];
    for (const auto& f : schema.features) {
      if (f.type == ValueType::kFloatVector || f.type == ValueType::kString) {
        return InvalidArgument("unknown input '" + t.name +
                               "'; this model takes one input per feature (see its metadata)");
      }
    }
    const std::size_t cols = schema.features.size();
    if (t.shape.size() != 2 || static_cast<std::size_t>(t.shape[1]) != cols) {
      return InvalidArgument("input '" + t.name +
                             "' is not a feature name, so it must have shape [N, " +
                             std::to_string(cols) + "] (one column per feature)");
    }
    feature_of.clear();
    return Status::Ok();
  }
  std::vector<bool> seen(schema.features.size(), false);
  feature_of.assign(inputs.size(), 0);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    const std::ptrdiff_t idx = schema.index_of(t.name);
    if (idx < 0) return InvalidArgument("unknown input '" + t.name + "'");
    const auto f = static_cast<std::size_t>(idx);
    if (seen[f]) return InvalidArgument("input '" + t.name + "' appears twice");
    seen[f] = true;
    feature_of[i] = f;
    const FeatureSpec& spec = schema.features[f];
    const std::size_t width = spec.length;
    const bool shape_ok =
        (t.shape.size() == 1 && width == 1 && spec.type != ValueType::kFloatVector) ||
        (t.shape.size() == 2 && static_cast<std::size_t>(t.shape[1]) == width);
    if (!shape_ok) {
      return InvalidArgument("input '" + t.name + "' must have shape " +
                             (spec.type == ValueType::kFloatVector
                                  ? "[N, " + std::to_string(width) + "]"
                                  : std::string("[N] or [N, 1]")));
    }
  }
  for (std::size_t f = 0; f < seen.size(); ++f) {
    if (!seen[f]) return InvalidArgument("missing input '" + schema.features[f].name + "'");
  }
  return Status::Ok();
}

Status tensors_to_batch(const std::vector<Tensor>& inputs, Batch& batch) {
  const Schema& schema = batch.schema();
  std::vector<std::size_t> feature_of;
  if (Status s = check_inputs(inputs, schema, feature_of); !s.ok()) return s;
  // Every feature has its tensor, whose shape matched its data (read_input): the batch's
  // N x F values are at most one per element the body held.
  const auto n = static_cast<std::size_t>(inputs.front().shape.front());
  batch.reserve_rows(n);
  for (std::size_t r = 0; r < n; ++r) batch.add_row();
  // Rows are filled column by column; Batch stores them row-major.
  auto cell = [&](std::size_t r, std::size_t f) -> Value& { return batch.mutable_row(r)[f]; };

  if (feature_of.empty()) {  // one [N, F] matrix
    const Tensor& t = inputs[0];
    const std::size_t cols = schema.features.size();
    for (std::size_t r = 0; r < n; ++r) {
      for (std::size_t f = 0; f < cols; ++f) {
        if (Status s = convert(t, r * cols + f, schema.features[f], cell(r, f)); !s.ok()) {
          return s;
        }
      }
    }
    return Status::Ok();
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    const std::size_t f = feature_of[i];
    const FeatureSpec& spec = schema.features[f];
    const std::size_t width = spec.length;
    for (std::size_t r = 0; r < n; ++r) {
      if (spec.type != ValueType::kFloatVector) {
        if (Status s = convert(t, r, spec, cell(r, f)); !s.ok()) return s;
        continue;
      }
      std::vector<float> vec(width);
      for (std::size_t k = 0; k < width; ++k) {
        const std::optional<double> d = t.number(r * width + k);
        if (!d) {
          return InvalidArgument("input '" + t.name + "' must be numeric for feature '" +
                                 spec.name + "'");
        }
        if (beyond_float_range(*d)) return float_range_error("a value of input '" + t.name + "'");
        vec[k] = static_cast<float>(*d);
      }
      cell(r, f) = std::move(vec);
    }
  }
  return Status::Ok();
}

struct V2Request {
  std::string id;
  std::string experiment_key;  // parameters.experiment_key: sticky routing key for splits
  std::vector<Tensor> inputs;
  std::vector<std::string> requested_outputs;
};

Status parse_v2_request(std::string& body, V2Request& out) {
  simdjson::ondemand::document doc;
  if (Status s = start_document(body, doc); !s.ok()) return s;
  simdjson::ondemand::object obj;
  if (auto error = doc.get_object().get(obj)) {
    return InvalidArgument(error == simdjson::INCORRECT_TYPE
                               ? "the request body must be a JSON object"
                               : std::string("malformed JSON: ") + simdjson::error_message(error));
  }
  bool have_inputs = false;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return InvalidArgument("malformed JSON");
    if (key == "id") {
      std::string_view id;
      if (field.value().get_string().get(id)) return InvalidArgument("'id' must be a string");
      out.id = std::string(id);
    } else if (key == "inputs") {
      simdjson::ondemand::array arr;
      if (field.value().get_array().get(arr)) return InvalidArgument("'inputs' must be an array");
      std::size_t i = 0;
      for (auto e : arr) {
        simdjson::ondemand::value ev;
        if (e.get(ev)) return InvalidArgument("malformed JSON in inputs");
        Tensor t;
        if (Status s = read_input(ev, t, i++); !s.ok()) return s;
        out.inputs.push_back(std::move(t));
      }
      have_inputs = true;
    } else if (key == "outputs") {
      simdjson::ondemand::array arr;
      if (field.value().get_array().get(arr)) return InvalidArgument("'outputs' must be an array");
      for (auto e : arr) {
        std::string_view name;
        if (e.find_field_unordered("name").get_string().get(name)) {
          return InvalidArgument("each of 'outputs' needs a string 'name'");
        }
        out.requested_outputs.emplace_back(name);
      }
    } else if (key == "parameters") {
      simdjson::ondemand::object params;
      if (field.value().get_object().get(params)) {
        return InvalidArgument("'parameters' must be an object");
      }
      for (auto param : params) {
        std::string_view name;
        if (param.unescaped_key().get(name)) return InvalidArgument("malformed JSON in parameters");
        if (name != "experiment_key") continue;  // other parameters are accepted and ignored
        std::string_view k;
        if (param.value().get_string().get(k) || k.size() > 256) {
          return InvalidArgument(
              "parameter 'experiment_key' must be a string of at most 256 characters");
        }
        out.experiment_key = std::string(k);
      }
    } else {
      return InvalidArgument("unknown field '" + std::string(key) +
                             "' (expected id, parameters, inputs, outputs)");
    }
  }
  if (!have_inputs) return InvalidArgument("'inputs' is required");
  return Status::Ok();
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
