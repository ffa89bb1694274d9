// A double as a float without undefined behaviour. A plain cast of a double beyond float's range
// is undefined in C++ (UBSan's float-cast-overflow), and the doubles cast here come from models,
// model files, worker processes and training data: any value at all.
#pragma once

#include <limits>

namespace forklift {

// The nearest float; beyond float's range, the infinity of its sign, as strtof reads such a
// number and as x86 converts it. NaN stays NaN.
inline float saturating_float(double d) {
  constexpr double kMax = static_cast<double>(std::numeric_limits<float>::max());
  if (d > kMax) return std::numeric_limits<float>::infinity();
  if (d < -kMax) return -std::numeric_limits<float>::infinity();
  return static_cast<float>(d);
}

}  // namespace forklift
