#include "api/v2/tensor_json.h"

#include <optional>

#include "api/json_request.h"

namespace forklift {
namespace {

using simdjson::ondemand::json_type;

// One input tensor. Its elements, flattened row-major, are kept in the one vector of their
// element kind: 8 bytes a number instead of a 40-byte Value, so that the data of the largest body
// costs a small multiple of its bytes (JSON can write a number in 2).

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
    if (t.shape.size() == kMaxTensorDimensions) {
      return InvalidArgument("input '" + t.name + "': shape has more than " +
                             std::to_string(kMaxTensorDimensions) + " dimensions");
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

}  // namespace

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
        if (name == "explain") {
          if (param.value().get_bool().get(out.explain)) {
            return InvalidArgument("parameter 'explain' must be true or false");
          }
          continue;
        }
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

}  // namespace forklift
