// The range of a `float` feature: the numeric runtimes compute in 32-bit floats, where a larger
// value would silently become infinity, so a larger one is refused for every runtime (a schema
// means the same whichever runtime serves it).
#pragma once

#include <cmath>
#include <limits>
#include <string>

#include "forklift/status.h"

namespace forklift {

// Ok, or InvalidArgument saying that `what` (e.g. "feature 'x'") is beyond the float range.
inline Status check_float_range(double value, const std::string& what) {
  if (std::fabs(value) <= std::numeric_limits<float>::max() || std::isnan(value)) {
    return Status::Ok();
  }
  return InvalidArgument(what + " is beyond the float range (magnitude at most 3.4e38)");
}

}  // namespace forklift
