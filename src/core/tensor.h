// An input tensor of the Open Inference Protocol, decoded from JSON (api/v2/tensor_json.h) or
// protobuf (grpc_api/oip_tensors.h); core/tensor_rows.h turns tensors into rows of a model's
// schema.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/types.h"

namespace forklift {

enum class Element { kFloat, kInt, kUInt, kBool, kBytes };

struct DatatypeInfo {
  Element element;
  double min;
  double max;
};

// The datatypes forklift accepts ("FP32", "INT64", "BOOL", "BYTES", ...), with the range their
// values must fit; nothing for any other name.
std::optional<DatatypeInfo> datatype_info(std::string_view datatype);

// The datatype a value of this type is served as: FP32 (float, float vector), INT64, BOOL, BYTES.
const char* datatype_name(ValueType type);

// The most dimensions a tensor's shape may have.
inline constexpr std::size_t kMaxTensorDimensions = 8;

// The product of the dimensions, or nothing when it overflows.
std::optional<std::size_t> element_count(const std::vector<std::int64_t>& shape);

// "[2,3]", for messages.
std::string shape_text(const std::vector<std::int64_t>& shape);

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

}  // namespace forklift
