#include "core/features_json.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/float_range.h"

namespace forklift {
namespace {

using simdjson::ondemand::json_type;

std::string json_type_name(json_type t) {
  switch (t) {
    case json_type::array:
      return "an array";
    case json_type::object:
      return "an object";
    case json_type::number:
      return "a number";
    case json_type::string:
      return "a string";
    case json_type::boolean:
      return "a boolean";
    case json_type::null:
      return "null";
  }
  return "unknown";
}

Status wrong_type(const FeatureSpec& spec, const std::string& got) {
  std::string want;
  switch (spec.type) {
    case ValueType::kFloat:
      want = "a number";
      break;
    case ValueType::kInt:
      want = "an integer";
      break;
    case ValueType::kBool:
      want = "true or false";
      break;
    case ValueType::kString:
      want = "a string";
      break;
    case ValueType::kFloatVector:
      want = "an array of " + std::to_string(spec.length) + " numbers";
      break;
  }
  return InvalidArgument("feature '" + spec.name + "' must be " + want + " (" +
                         std::string(to_string(spec.type)) + "), got " + got);
}

Status missing_not_allowed(const FeatureSpec& spec) {
  return InvalidArgument("feature '" + spec.name +
                         "' is null (missing), which its schema does not allow");
}

// The error for a value that is not valid JSON. Python's json.dumps writes NaN and Infinity as
// bare words, which no JSON parser accepts; say so, and what to send instead.
Status malformed_value(simdjson::ondemand::value& v, const FeatureSpec& spec,
                       const char* otherwise = "malformed JSON") {
  const std::string_view token = v.raw_json_token();
  if (token.starts_with("NaN") || token.starts_with("Infinity") || token.starts_with("-Infinity")) {
    return InvalidArgument("feature '" + spec.name +
                           "' is NaN or Infinity, which JSON cannot carry; send null for a "
                           "missing value" +
                           (spec.allow_missing ? "" : " (this feature does not allow one)"));
  }
  return InvalidArgument("feature '" + spec.name + "': " + otherwise);
}

Status parse_number(simdjson::ondemand::value& v, const FeatureSpec& spec, double& out) {
  json_type t;
  if (v.type().get(t)) return malformed_value(v, spec);
  if (t == json_type::null) {
    if (!spec.allow_missing) return missing_not_allowed(spec);
    out = std::numeric_limits<double>::quiet_NaN();
    return Status::Ok();
  }
  if (t != json_type::number) return wrong_type(spec, json_type_name(t));
  if (v.get_double().get(out)) return malformed_value(v, spec, "not a representable number");
  if (!std::isfinite(out)) return InvalidArgument("feature '" + spec.name + "' is not finite");
  return Status::Ok();
}

Status parse_one(simdjson::ondemand::value v, const FeatureSpec& spec, Value& out) {
  json_type t;
  if (v.type().get(t)) return malformed_value(v, spec);
  switch (spec.type) {
    case ValueType::kFloat: {
      double d = 0;
      if (Status s = parse_number(v, spec, d); !s.ok()) return s;
      if (beyond_float_range(d)) return float_range_error("feature '" + spec.name + "'");
      out = d;
      return Status::Ok();
    }
    case ValueType::kInt: {
      if (t != json_type::number) return wrong_type(spec, json_type_name(t));
      std::int64_t i = 0;
      if (v.get_int64().get(i)) {
        return wrong_type(spec, "a number that is not a 64-bit integer");
      }
      out = i;
      return Status::Ok();
    }
    case ValueType::kBool: {
      if (t != json_type::boolean) return wrong_type(spec, json_type_name(t));
      bool b = false;
      if (v.get_bool().get(b)) return wrong_type(spec, "malformed boolean");
      out = b;
      return Status::Ok();
    }
    case ValueType::kString: {
      if (t != json_type::string) return wrong_type(spec, json_type_name(t));
      std::string_view s;
      if (v.get_string().get(s)) return wrong_type(spec, "a malformed string");
      out = std::string(s);
      return Status::Ok();
    }
    case ValueType::kFloatVector: {
      if (t != json_type::array) return wrong_type(spec, json_type_name(t));
      simdjson::ondemand::array arr;
      if (v.get_array().get(arr)) return wrong_type(spec, "a malformed array");
      std::vector<float> vec;
      // Grown with the elements that arrive: a schema's length (up to 1,000,000) must not cost
      // its full size for a request that sends an empty array.
      vec.reserve(std::min<std::size_t>(spec.length, 256));
      for (auto element : arr) {
        simdjson::ondemand::value ev;
        if (element.get(ev)) return InvalidArgument("feature '" + spec.name + "': malformed JSON");
        if (vec.size() == spec.length) {
          return InvalidArgument("feature '" + spec.name + "' must have " +
                                 std::to_string(spec.length) + " elements, got more");
        }
        double d = 0;
        if (Status s = parse_number(ev, spec, d); !s.ok()) return s;
        if (beyond_float_range(d))
          return float_range_error("an element of feature '" + spec.name + "'");
        vec.push_back(to_float_saturating(d));  // in range: FLT_MAX at most
      }
      if (vec.size() != spec.length) {
        return InvalidArgument("feature '" + spec.name + "' must have " +
                               std::to_string(spec.length) + " elements, got " +
                               std::to_string(vec.size()));
      }
      out = std::move(vec);
      return Status::Ok();
    }
  }
  return Internal("unhandled feature type");
}

}  // namespace

Status parse_feature_object(simdjson::ondemand::value value, const Schema& schema,
                            std::span<Value> row) {
  simdjson::ondemand::object obj;
  json_type t;
  if (value.type().get(t)) return InvalidArgument("malformed JSON");
  if (t != json_type::object) {
    return InvalidArgument("features must be an object of name: value, got " + json_type_name(t));
  }
  if (value.get_object().get(obj)) return InvalidArgument("malformed JSON");
  // Which features were seen: a bitmap on the stack for schemas of up to 256 features (no
  // allocation per row), a vector beyond.
  const std::size_t width = schema.features.size();
  std::array<std::uint64_t, 4> small{};
  std::vector<std::uint64_t> large;
  std::uint64_t* seen_words = small.data();
  if (width > 256) {
    large.assign((width + 63) / 64, 0);
    seen_words = large.data();
  }
  std::size_t count = 0;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return InvalidArgument("malformed JSON in features");
    // Clients usually send features in the manifest's order: try the next one first.
    const std::ptrdiff_t idx = count < width && schema.features[count].name == key
                                   ? static_cast<std::ptrdiff_t>(count)
                                   : schema.index_of(key);
    if (idx < 0) return InvalidArgument("unknown feature '" + std::string(key) + "'");
    const auto i = static_cast<std::size_t>(idx);
    std::uint64_t& word = seen_words[i / 64];
    const std::uint64_t bit = std::uint64_t{1} << (i % 64);
    if (word & bit) return InvalidArgument("feature '" + std::string(key) + "' appears twice");
    word |= bit;
    ++count;
    if (Status s = parse_one(field.value(), schema.features[i], row[i]); !s.ok()) return s;
  }
  if (count != schema.features.size()) {
    for (std::size_t i = 0; i < width; ++i) {
      if (!(seen_words[i / 64] >> (i % 64) & 1))
        return InvalidArgument("missing feature '" + schema.features[i].name + "'");
    }
  }
  return Status::Ok();
}

Status parse_instances(simdjson::ondemand::value value, Batch& batch) {
  json_type t;
  if (value.type().get(t)) return InvalidArgument("malformed JSON");
  if (t != json_type::array) {
    return InvalidArgument("instances must be an array of feature objects, got " +
                           json_type_name(t));
  }
  simdjson::ondemand::array arr;
  if (value.get_array().get(arr)) return InvalidArgument("malformed JSON");
  std::size_t n = 0;
  for (auto element : arr) {
    simdjson::ondemand::value ev;
    if (element.get(ev)) return InvalidArgument("malformed JSON in instances");
    std::span<Value> row = batch.add_row();
    if (Status s = parse_feature_object(ev, batch.schema(), row); !s.ok()) {
      return InvalidArgument("instances[" + std::to_string(n) + "]: " + s.message());
    }
    ++n;
  }
  if (n == 0) return InvalidArgument("instances must not be empty");
  return Status::Ok();
}

}  // namespace forklift
