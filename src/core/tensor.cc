#include "core/tensor.h"

#include <limits>

namespace forklift {

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

const char* datatype_name(ValueType type) {
  switch (type) {
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

std::optional<std::size_t> element_count(const std::vector<std::int64_t>& shape) {
  std::size_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<std::size_t>(d), &n)) return std::nullopt;
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

}  // namespace forklift
