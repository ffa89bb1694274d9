// Structured logs: one JSON object per line on stdout, for lifecycle events and errors.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace forklift::log {

enum class Level { kDebug, kInfo, kWarn, kError };

using FieldValue = std::variant<std::string_view, std::int64_t, double, bool>;
using Field = std::pair<std::string_view, FieldValue>;

// Writes {"ts": ..., "level": ..., "event": event, fields...} as one line, atomically.
void write(Level level, std::string_view event, std::initializer_list<Field> fields = {});

inline void info(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::kInfo, event, fields);
}
inline void warn(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::kWarn, event, fields);
}
inline void error(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::kError, event, fields);
}

// Silences everything below `level` (tests and `forklift selftest` use kWarn).
void set_min_level(Level level);

}  // namespace forklift::log
