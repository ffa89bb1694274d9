// Whether callers of one version can switch to another without changing their requests.
#pragma once

#include <string>
#include <vector>

#include "forklift/types.h"

namespace forklift {

// The ways `next` would break requests that `current` accepts, one readable line each: a feature
// dropped (callers still send it, and unknown features are refused), retyped, newly required, or
// no longer allowed to be missing. Empty when compatible.
std::vector<std::string> schema_breaks(const Schema& current, const Schema& next);

}  // namespace forklift
