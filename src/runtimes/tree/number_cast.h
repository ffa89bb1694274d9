// A number read from a model file, as the type a forest stores it in. Casting NaN, an infinity or
// a value outside the target's range is undefined behaviour in C++, so the parsers never cast a
// file's double directly (fuzz_tree_models found a null, read as NaN, cast to a child index).
#pragma once

#include <cmath>
#include <limits>
#include <optional>
#include <type_traits>

#include "common/float_cast.h"

namespace forklift::tree {

// An integer type: the value if it is whole and within T's range, otherwise nothing. float: the
// nearest float, NaN and the infinities as they are (the formats write them), a finite value
// beyond float's range as the infinity of its sign (saturating_float); never nothing.
template <class T>
std::optional<T> number_as(double d) {
  if constexpr (std::is_same_v<T, float>) {
    return saturating_float(d);
  } else if constexpr (std::is_same_v<T, double>) {
    return d;
  } else {
    // [lo, hi) is [-2^digits, 2^digits) or [0, 2^digits), both ends exact in a double; NaN fails.
    const double hi = std::ldexp(1.0, std::numeric_limits<T>::digits);
    const double lo = std::is_signed_v<T> ? -hi : 0.0;
    if (!(d >= lo && d < hi) || d != std::trunc(d)) return std::nullopt;
    return static_cast<T>(d);
  }
}

}  // namespace forklift::tree
