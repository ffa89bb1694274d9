// The range of a `float` feature: the numeric runtimes compute in 32-bit floats, where a larger
// value would silently become infinity, so a larger one is refused for every runtime (a schema
// means the same whichever runtime serves it). To narrow a value instead, with an infinity for
// one beyond the range (a model's output), see common/float_cast.h: the same bound.
#pragma once

#include <cmath>
#include <string>
#include <string_view>

#include "common/float_cast.h"
#include "forklift/status.h"

namespace forklift {

// Whether `value` would become infinity as a float (NaN, "missing", is in range). Not `> FLT_MAX`:
// FLT_MAX's shortest text, 3.4028235e38, is a little above it as a double and reads as FLT_MAX.
inline bool beyond_float_range(double value) {
  return std::fabs(value) >= kFloatOverflow;
}

// The error for such a value: `what` names it, e.g. "feature 'x'". Built only on failure: on
// the hot path (every float of every request) the check must cost a comparison, not a string.
inline Status float_range_error(std::string_view what) {
  return InvalidArgument(std::string(what) +
                         " is beyond the float range (magnitude at most 3.4e38)");
}

}  // namespace forklift
