#include "common/request_id.h"

#include <cstdint>
#include <random>

namespace forklift {

std::string make_request_id() {
  thread_local const std::uint64_t prefix =
      std::random_device{}() ^ (std::uint64_t{std::random_device{}()} << 32);
  thread_local std::uint64_t counter = 0;
  // "%016llx-%08llx" by hand: snprintf was a measurable part of a one-row request.
  static constexpr char kHex[] = "0123456789abcdef";
  const std::uint64_t n = ++counter;
  const int counter_digits = n >> 32 ? 16 : 8;
  std::string id(17 + static_cast<std::size_t>(counter_digits), '-');
  for (int i = 0; i < 16; ++i)
    id[static_cast<std::size_t>(15 - i)] = kHex[(prefix >> (4 * i)) & 15];
  for (int i = 0; i < counter_digits; ++i) {
    id[static_cast<std::size_t>(16 + counter_digits - i)] = kHex[(n >> (4 * i)) & 15];
  }
  return id;
}

std::string request_id_for(std::string_view incoming) {
  if (incoming.empty() || incoming.size() > 128) return make_request_id();
  for (char c : incoming) {
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') return make_request_id();
  }
  return std::string(incoming);
}

}  // namespace forklift
