// A double narrowed to float with its result stated, not left to the compiler. The standard
// leaves the conversion of a double beyond float's range undefined unless infinity counts as in
// range (gcc and clang give the infinity, and UBSan does not check it), and the doubles narrowed
// here come from models, model files and worker processes: any value at all. To refuse such a
// value instead (a client's feature), see core/float_range.h, which uses the same bound.
#pragma once

#include <limits>

namespace forklift {

// The smallest magnitude that rounds to infinity as a float: halfway between the largest float
// (0x1.fffffep127) and 2^128. Anything below rounds to a finite float, so FLT_MAX's own shortest
// text, 3.4028235e38 (a little above FLT_MAX as a double), still reads as FLT_MAX.
inline constexpr double kFloatOverflow = 0x1.ffffffp127;

// The float nearest `d`, rounding as strtof does: from kFloatOverflow on, the infinity of its
// sign. NaN stays NaN.
inline float to_float_saturating(double d) {
  constexpr double kMax = static_cast<double>(std::numeric_limits<float>::max());
  if (d >= kFloatOverflow) return std::numeric_limits<float>::infinity();
  if (d <= -kFloatOverflow) return -std::numeric_limits<float>::infinity();
  if (d > kMax) return std::numeric_limits<float>::max();
  if (d < -kMax) return -std::numeric_limits<float>::max();
  return static_cast<float>(d);
}

}  // namespace forklift
