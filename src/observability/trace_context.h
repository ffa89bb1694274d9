// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` and `tracestate`
// a caller sends, read as hostile input, and the ids of the spans forklift starts.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace forklift {

using TraceId = std::array<std::uint8_t, 16>;
using SpanId = std::array<std::uint8_t, 8>;

struct TraceContext {
  TraceId trace_id{};
  SpanId span_id{};  // the caller's span: the parent of forklift's
  bool sampled = false;
  std::string tracestate;  // passed on unchanged when usable, else empty
};

// The caller's context from `traceparent` (and `tracestate`), or nothing when `traceparent` is
// malformed: version 00 exactly as specified (lowercase hex, ids not all zero); a later version
// (not ff) by its first four fields, as the specification asks. A `tracestate` over 512 bytes or
// with characters outside printable ASCII is dropped, not the context.
std::optional<TraceContext> parse_traceparent(std::string_view traceparent,
                                              std::string_view tracestate = {});

// "00-<trace id>-<span id>-<01|00>".
std::string format_traceparent(const TraceId& trace_id, const SpanId& span_id, bool sampled);

// Lowercase hex, two characters a byte.
template <std::size_t N>
std::string to_hex(const std::array<std::uint8_t, N>& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * N, '0');
  for (std::size_t i = 0; i < N; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 15];
  }
  return out;
}

// Fresh random ids (never all zero), from a per-thread generator.
TraceId new_trace_id();
SpanId new_span_id();

}  // namespace forklift
