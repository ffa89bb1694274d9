// A number read from a model file, as the type a forest stores it in. Converting NaN, an infinity
// or a value outside its range to an integer type is undefined behaviour, so the parsers never
// cast a file's double directly (fuzz_tree_models found a null, read as NaN, cast to an index).
#pragma once

#include <cmath>
#include <limits>
#include <optional>
#include <type_traits>

#include "common/float_cast.h"

namespace forklift::tree {

// Integers: the value if it is whole and within T's range, otherwise nothing (the caller refuses
// the model). float: never nothing; NaN and the infinities as they are (the formats write them),
// a finite value beyond float's range as the infinity of its sign.
template <class T>
std::optional<T> checked_number_as(double d) {
  if constexpr (std::is_same_v<T, float>) {
    return to_float_saturating(d);
  } else if constexpr (std::is_same_v<T, double>) {
    return d;
  } else {
    // [lo, hi) is [-2^digits, 2^digits) or [0, 2^digits), both ends exact in a double; not
    // `<= max()`, which rounds up to 2^digits as a double and would let that through. NaN fails.
    const double hi = std::ldexp(1.0, std::numeric_limits<T>::digits);
    const double lo = std::is_signed_v<T> ? -hi : 0.0;
    if (!(d >= lo && d < hi) || d != std::trunc(d)) return std::nullopt;
    return static_cast<T>(d);
  }
}

}  // namespace forklift::tree
