#include "common/json_writer.h"

#include <charconv>
#include <cmath>
#include <cstdint>

#include "common/float_cast.h"

namespace forklift::json {

namespace {

// The length of the well-formed UTF-8 sequence starting at s[i] (1 to 4), or 0 when the bytes
// there are not one (a stray continuation byte, a truncated or overlong sequence, a surrogate).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto lead = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) {
    n = 2;
    cp = lead & 0x1fu;
  } else if ((lead >> 4) == 0xe) {
    n = 3;
    cp = lead & 0x0fu;
  } else if ((lead >> 3) == 0x1e) {
    n = 4;
    cp = lead & 0x07u;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c >> 6) != 0x2) return 0;
    cp = (cp << 6) | (c & 0x3fu);
  }
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
      cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    return 0;
  }
  return n;
}

}  // namespace

void append_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  // Runs that need no escaping (nearly every id and name) are appended whole.
  std::size_t plain = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      // Text from a client (a path, a feature name) may not be UTF-8; JSON must be: a byte that
      // does not start a well-formed sequence becomes U+FFFD.
      if (const std::size_t n = utf8_sequence(s, i); n > 0) {
        i += n - 1;
        continue;
      }
      out.append(s, plain, i - plain);
      out += "\\ufffd";
      plain = i + 1;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s, plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
    }
  }
  out.append(s, plain, std::string_view::npos);
  out.push_back('"');
}

void append_double(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += "null";
    return;
  }
  char buf[32];
  // A value that came from a float (XGBoost predicts in float32) prints as that float's shortest
  // form, 523.4567 rather than 523.4567260742188; any other double keeps its full precision.
  const float f = to_float_saturating(d);
  auto [end, ec] = static_cast<double>(f) == d ? std::to_chars(buf, buf + sizeof buf, f)
                                               : std::to_chars(buf, buf + sizeof buf, d);
  out.append(buf, end);
}

void append_int(std::string& out, std::int64_t i) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, i);
  out.append(buf, end);
}

void append_value(std::string& out, const Value& v) {
  if (const auto* d = std::get_if<double>(&v)) {
    append_double(out, *d);
  } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
    append_int(out, *i);
  } else if (const auto* b = std::get_if<bool>(&v)) {
    out += *b ? "true" : "false";
  } else if (const auto* s = std::get_if<std::string>(&v)) {
    append_string(out, *s);
  } else if (const auto* vec = std::get_if<std::vector<float>>(&v)) {
    out.push_back('[');
    for (std::size_t k = 0; k < vec->size(); ++k) {
      if (k) out.push_back(',');
      // Print the float's own shortest form, not that of its widened double.
      const float f = (*vec)[k];
      if (!std::isfinite(f)) {
        out += "null";
        continue;
      }
      char buf[32];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, f);
      out.append(buf, end);
    }
    out.push_back(']');
  }
}

std::string error_body(std::string_view message) {
  std::string out = "{\"error\":";
  append_string(out, message);
  out.push_back('}');
  return out;
}

}  // namespace forklift::json
