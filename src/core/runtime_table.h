// The process-wide table of runtimes by name. Runtimes register into it (register_runtime in
// forklift/runtime.h: the built-in ones from runtimes/builtin.h, teams' through the macro); the
// version loader looks a manifest's `runtime:` up in it. Core owns the table so that it never
// depends on the runtimes themselves.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "forklift/runtime.h"

namespace forklift {

// The runtime registered as `name`, or nullptr.
const RuntimeInfo* find_runtime(std::string_view name);
std::vector<std::string> runtime_names();

}  // namespace forklift
