#include "observability/trace_context.h"

#include <random>

namespace forklift {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is not allowed either
}

template <std::size_t N>
bool read_hex(std::string_view text, std::array<std::uint8_t, N>& out) {
  if (text.size() != 2 * N) return false;
  bool nonzero = false;
  for (std::size_t i = 0; i < N; ++i) {
    const int hi = hex_value(text[2 * i]);
    const int lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
    nonzero = nonzero || out[i] != 0;
  }
  return nonzero;
}

bool usable_tracestate(std::string_view s) {
  if (s.size() > 512) return false;
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

std::mt19937_64& generator() {
  thread_local std::mt19937_64 g{(std::uint64_t{std::random_device{}()} << 32) ^
                                 std::random_device{}()};
  return g;
}

template <std::size_t N>
std::array<std::uint8_t, N> random_id() {
  std::array<std::uint8_t, N> id{};
  do {
    for (std::size_t i = 0; i < N; i += 8) {
      const std::uint64_t r = generator()();
      for (std::size_t j = 0; j < 8 && i + j < N; ++j) {
        id[i + j] = static_cast<std::uint8_t>(r >> (8 * j));
      }
    }
  } while (id == std::array<std::uint8_t, N>{});
  return id;
}

}  // namespace

std::optional<TraceContext> parse_traceparent(std::string_view tp, std::string_view tracestate) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 characters.
  if (tp.size() < 55) return std::nullopt;
  std::array<std::uint8_t, 1> version{};
  const bool version_zero = tp.substr(0, 2) == "00";
  if (!version_zero && (!read_hex(tp.substr(0, 2), version) || version[0] == 0xff)) {
    return std::nullopt;
  }
  if (tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return std::nullopt;
  // Version 00 is exactly 55 characters; a later version may add fields after a '-'.
  if (tp.size() > 55 && (version_zero || tp[55] != '-')) return std::nullopt;
  TraceContext ctx;
  std::array<std::uint8_t, 1> flags{};
  if (!read_hex(tp.substr(3, 32), ctx.trace_id) || !read_hex(tp.substr(36, 16), ctx.span_id)) {
    return std::nullopt;
  }
  // Flags may be 00 (read_hex refuses all-zero values, so they are read by hand).
  const int hi = hex_value(tp[53]);
  const int lo = hex_value(tp[54]);
  if (hi < 0 || lo < 0) return std::nullopt;
  flags[0] = static_cast<std::uint8_t>(hi * 16 + lo);
  ctx.sampled = (flags[0] & 1) != 0;
  if (usable_tracestate(tracestate)) ctx.tracestate = std::string(tracestate);
  return ctx;
}

std::string format_traceparent(const TraceId& trace_id, const SpanId& span_id, bool sampled) {
  return "00-" + to_hex(trace_id) + "-" + to_hex(span_id) + (sampled ? "-01" : "-00");
}

TraceId new_trace_id() {
  return random_id<16>();
}
SpanId new_span_id() {
  return random_id<8>();
}

}  // namespace forklift
