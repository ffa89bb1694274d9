// Writes JSON straight into an output string: responses are small, so no DOM is built.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "forklift/types.h"

namespace forklift::json {

void append_string(std::string& out, std::string_view s);  // quoted and escaped
void append_double(std::string& out, double d);            // shortest round-trip form; NaN -> null
void append_int(std::string& out, std::int64_t i);
void append_value(std::string& out, const Value& v);

// {"error": message}
std::string error_body(std::string_view message);

}  // namespace forklift::json
