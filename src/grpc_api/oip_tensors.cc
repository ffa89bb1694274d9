#include "grpc_api/oip_tensors.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>

#include "common/float_cast.h"

// Returns a failed Status at once.
#define FORWARD(expr)                            \
  do {                                           \
    if (Status s_ = (expr); !s_.ok()) return s_; \
  } while (false)

namespace forklift::grpc_api {
namespace {

// Bytes per element in raw contents; 0 for BYTES (length-prefixed).
std::size_t raw_element_size(std::string_view datatype) {
  if (datatype == "BOOL" || datatype == "INT8" || datatype == "UINT8") return 1;
  if (datatype == "INT16" || datatype == "UINT16") return 2;
  if (datatype == "INT32" || datatype == "UINT32" || datatype == "FP32") return 4;
  if (datatype == "INT64" || datatype == "UINT64" || datatype == "FP64") return 8;
  return 0;
}

template <class T>
T load_little_endian(const char* p) {
  using Bits = std::conditional_t<
      sizeof(T) == 1, std::uint8_t,
      std::conditional_t<sizeof(T) == 2, std::uint16_t,
                         std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>>;
  Bits bits = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    bits |= static_cast<Bits>(static_cast<Bits>(static_cast<unsigned char>(p[i])) << (8 * i));
  }
  return std::bit_cast<T>(bits);
}

template <class T>
void append_little_endian(std::string& out, T value) {
  using Bits = std::conditional_t<
      sizeof(T) == 1, std::uint8_t,
      std::conditional_t<sizeof(T) == 2, std::uint16_t,
                         std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>>;
  const auto bits = std::bit_cast<Bits>(value);
  char bytes[sizeof(T)];
  for (std::size_t i = 0; i < sizeof(T); ++i) bytes[i] = static_cast<char>(bits >> (8 * i));
  out.append(bytes, sizeof(T));
}

class TensorReader {
 public:
  explicit TensorReader(Tensor& t) : t_(t) {}

  Status bad(const std::string& what) const {
    return InvalidArgument("input '" + t_.name + "' (" + t_.datatype + "): " + what);
  }

  Status add_float(double d) {
    if (!std::isfinite(d)) return bad("values must be finite numbers");
    if (d < t_.info.min || d > t_.info.max) return bad("a value is out of range");
    t_.floats.push_back(d);
    return Status::Ok();
  }
  Status add_int(std::int64_t i) {
    if (static_cast<double>(i) < t_.info.min || static_cast<double>(i) > t_.info.max) {
      return bad("value " + std::to_string(i) + " is out of range");
    }
    t_.ints.push_back(i);
    return Status::Ok();
  }
  Status add_uint(std::uint64_t u) {
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return bad("value " + std::to_string(u) + " is out of range");
    }
    return add_int(static_cast<std::int64_t>(u));
  }

  // The typed field that matches the datatype; every other field must be empty.
  Status read_contents(const inference::InferTensorContents& c) {
    const std::string& dt = t_.datatype;
    const auto only = [&](int holding) {
      const int sizes[] = {c.bool_contents_size(),   c.int_contents_size(),
                           c.int64_contents_size(),  c.uint_contents_size(),
                           c.uint64_contents_size(), c.fp32_contents_size(),
                           c.fp64_contents_size(),   c.bytes_contents_size()};
      for (int i = 0; i < 8; ++i) {
        if (i != holding && sizes[i] > 0) return false;
      }
      return true;
    };
    if (dt == "BOOL") {
      if (!only(0)) return mismatched("bool_contents");
      for (bool b : c.bool_contents()) t_.bools.push_back(b ? 1 : 0);
    } else if (dt == "INT8" || dt == "INT16" || dt == "INT32") {
      if (!only(1)) return mismatched("int_contents");
      for (std::int32_t v : c.int_contents()) FORWARD(add_int(v));
    } else if (dt == "INT64") {
      if (!only(2)) return mismatched("int64_contents");
      for (std::int64_t v : c.int64_contents()) FORWARD(add_int(v));
    } else if (dt == "UINT8" || dt == "UINT16" || dt == "UINT32") {
      if (!only(3)) return mismatched("uint_contents");
      for (std::uint32_t v : c.uint_contents()) FORWARD(add_uint(v));
    } else if (dt == "UINT64") {
      if (!only(4)) return mismatched("uint64_contents");
      for (std::uint64_t v : c.uint64_contents()) FORWARD(add_uint(v));
    } else if (dt == "FP32") {
      if (!only(5)) return mismatched("fp32_contents");
      for (float v : c.fp32_contents()) FORWARD(add_float(v));
    } else if (dt == "FP64") {
      if (!only(6)) return mismatched("fp64_contents");
      for (double v : c.fp64_contents()) FORWARD(add_float(v));
    } else {
      if (!only(7)) return mismatched("bytes_contents");
      for (const std::string& s : c.bytes_contents()) t_.strings.push_back(s);
    }
    return Status::Ok();
  }

  // Raw little-endian bytes, row-major; BYTES elements are a 4-byte length then the bytes.
  Status read_raw(const std::string& raw) {
    const std::string& dt = t_.datatype;
    const std::size_t size = raw_element_size(dt);
    const char* p = raw.data();
    if (size == 0) {
      std::size_t at = 0;
      while (at < raw.size()) {
        if (raw.size() - at < 4) return bad("raw contents end inside an element's length");
        const std::uint32_t n = load_little_endian<std::uint32_t>(p + at);
        at += 4;
        if (n > raw.size() - at) return bad("a raw element is longer than the bytes that follow");
        t_.strings.emplace_back(p + at, n);
        at += n;
      }
      return Status::Ok();
    }
    if (raw.size() % size != 0) {
      return bad("raw contents of " + std::to_string(raw.size()) +
                 " bytes are not a whole "
                 "number of " +
                 std::to_string(size) + "-byte elements");
    }
    const std::size_t n = raw.size() / size;
    if (dt == "BOOL") {
      t_.bools.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        const auto b = static_cast<unsigned char>(p[i]);
        if (b > 1) return bad("raw BOOL elements must be 0 or 1");
        t_.bools.push_back(b);
      }
      return Status::Ok();
    }
    // The datatype is dispatched once per tensor, not per element.
    if (dt == "INT8") return read_each<std::int8_t>(p, n, &TensorReader::add_int);
    if (dt == "INT16") return read_each<std::int16_t>(p, n, &TensorReader::add_int);
    if (dt == "INT32") return read_each<std::int32_t>(p, n, &TensorReader::add_int);
    if (dt == "INT64") return read_each<std::int64_t>(p, n, &TensorReader::add_int);
    if (dt == "UINT8") return read_each<std::uint8_t>(p, n, &TensorReader::add_uint);
    if (dt == "UINT16") return read_each<std::uint16_t>(p, n, &TensorReader::add_uint);
    if (dt == "UINT32") return read_each<std::uint32_t>(p, n, &TensorReader::add_uint);
    if (dt == "UINT64") return read_each<std::uint64_t>(p, n, &TensorReader::add_uint);
    if (dt == "FP32") return read_each<float>(p, n, &TensorReader::add_float);
    return read_each<double>(p, n, &TensorReader::add_float);
  }

 private:
  // `n` little-endian T at `p`, each through `add` (which checks its range).
  template <class T, class Arg>
  Status read_each(const char* p, std::size_t n, Status (TensorReader::*add)(Arg)) {
    for (std::size_t i = 0; i < n; ++i, p += sizeof(T)) {
      if (Status s = (this->*add)(static_cast<Arg>(load_little_endian<T>(p))); !s.ok()) return s;
    }
    return Status::Ok();
  }

  Status mismatched(const char* field) const {
    return bad(std::string("contents must be in ") + field + " and only there");
  }

  Tensor& t_;
};

Status read_header(const inference::ModelInferRequest::InferInputTensor& in, std::size_t index,
                   Tensor& t) {
  if (in.name().empty()) {
    return InvalidArgument("inputs[" + std::to_string(index) + "]: 'name' is required");
  }
  t.name = in.name().substr(0, 256);
  t.datatype = in.datatype().substr(0, 32);
  const auto info = datatype_info(t.datatype);
  if (!info) {
    return InvalidArgument("input '" + t.name + "': datatype '" + t.datatype +
                           "' is not supported (use FP32, FP64, INT8-64, UINT8-64, BOOL or BYTES)");
  }
  t.info = *info;
  if (in.shape_size() == 0)
    return InvalidArgument("input '" + t.name + "': shape must not be empty");
  if (static_cast<std::size_t>(in.shape_size()) > kMaxTensorDimensions) {
    return InvalidArgument("input '" + t.name + "': shape has more than " +
                           std::to_string(kMaxTensorDimensions) + " dimensions");
  }
  for (std::int64_t dim : in.shape()) {
    // As in JSON: a 0 dimension would describe no elements while its siblings size nothing the
    // data bounds.
    if (dim < 1)
      return InvalidArgument("input '" + t.name + "': shape must hold positive integers");
    t.shape.push_back(dim);
  }
  return Status::Ok();
}

std::optional<std::string> parameter_string(const inference::InferParameter& p) {
  if (p.parameter_choice_case() != inference::InferParameter::kStringParam) return std::nullopt;
  return p.string_param();
}

}  // namespace

Status decode_infer_request(const inference::ModelInferRequest& request, DecodedInferRequest& out) {
  if (request.inputs_size() == 0) return InvalidArgument("'inputs' is required");
  out.raw = request.raw_input_contents_size() > 0;
  if (out.raw && request.raw_input_contents_size() != request.inputs_size()) {
    return InvalidArgument("raw_input_contents holds " +
                           std::to_string(request.raw_input_contents_size()) + " entries for " +
                           std::to_string(request.inputs_size()) +
                           " inputs: it needs one per input, in their order");
  }
  out.inputs.reserve(static_cast<std::size_t>(request.inputs_size()));
  for (int i = 0; i < request.inputs_size(); ++i) {
    const auto& in = request.inputs(i);
    Tensor t;
    FORWARD(read_header(in, static_cast<std::size_t>(i), t));
    TensorReader reader(t);
    if (out.raw) {
      if (in.has_contents() && in.contents().ByteSizeLong() > 0) {
        return reader.bad("contents must be empty when raw_input_contents is used");
      }
      FORWARD(reader.read_raw(request.raw_input_contents(i)));
    } else {
      FORWARD(reader.read_contents(in.contents()));
    }
    const std::optional<std::size_t> expected = element_count(t.shape);
    if (!expected || *expected != t.size()) {
      return InvalidArgument("input '" + t.name + "': shape " + shape_text(t.shape) + " holds " +
                             (expected ? std::to_string(*expected) : std::string("too many")) +
                             " element(s) but its contents have " + std::to_string(t.size()));
    }
    out.inputs.push_back(std::move(t));
  }
  for (const auto& requested : request.outputs()) {
    out.requested_outputs.push_back(requested.name().substr(0, 256));
  }
  const auto key = request.parameters().find("experiment_key");
  if (key != request.parameters().end()) {
    const std::optional<std::string> k = parameter_string(key->second);
    if (!k || k->size() > 256) {
      return InvalidArgument(
          "parameter 'experiment_key' must be a string_param of at most 256 characters");
    }
    out.experiment_key = *k;
  }
  // Explanations are offered over REST only: asking here is refused, not silently ignored.
  const auto explain = request.parameters().find("explain");
  if (explain != request.parameters().end() &&
      !(explain->second.has_bool_param() && !explain->second.bool_param())) {
    return InvalidArgument(
        "parameter 'explain': explanations are offered over REST only (POST /infer or the v2 "
        "REST route), not yet over gRPC");
  }
  return Status::Ok();
}

#undef FORWARD

void encode_outputs(const OutputSpec& output, const std::vector<Value>& outputs, bool raw,
                    inference::ModelInferResponse& response) {
  auto* tensor = response.add_outputs();
  tensor->set_name(output.name);
  tensor->set_datatype(datatype_name(output.type));
  tensor->add_shape(static_cast<std::int64_t>(outputs.size()));
  if (output.type == ValueType::kFloatVector) {
    tensor->add_shape(static_cast<std::int64_t>(output.length));
  }
  std::string* bytes = raw ? response.add_raw_output_contents() : nullptr;
  inference::InferTensorContents* contents = raw ? nullptr : tensor->mutable_contents();
  for (const Value& v : outputs) {
    if (const auto* d = std::get_if<double>(&v)) {
      if (raw) {
        append_little_endian(*bytes, to_float_saturating(*d));
      } else {
        contents->add_fp32_contents(to_float_saturating(*d));
      }
    } else if (const auto* vec = std::get_if<std::vector<float>>(&v)) {
      for (float f : *vec) {
        if (raw) {
          append_little_endian(*bytes, f);
        } else {
          contents->add_fp32_contents(f);
        }
      }
    } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
      if (raw) {
        append_little_endian(*bytes, *i);
      } else {
        contents->add_int64_contents(*i);
      }
    } else if (const auto* b = std::get_if<bool>(&v)) {
      if (raw) {
        bytes->push_back(*b ? 1 : 0);
      } else {
        contents->add_bool_contents(*b);
      }
    } else if (const auto* s = std::get_if<std::string>(&v)) {
      if (raw) {
        append_little_endian(*bytes, static_cast<std::uint32_t>(s->size()));
        bytes->append(*s);
      } else {
        contents->add_bytes_contents(*s);
      }
    }
  }
}

}  // namespace forklift::grpc_api
