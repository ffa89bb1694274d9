// An input tensor of the Open Inference Protocol, decoded (api/v2/tensor_json.h), and what turns
// tensors into rows of a model's schema (core/tensor_rows.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace forklift {

enum class Element { kFloat, kInt, kUInt, kBool, kBytes };

struct DatatypeInfo {
  Element element;
  double min;
  double max;
};

// The datatypes forklift accepts, with the range their values must fit.

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
