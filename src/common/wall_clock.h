// Wall-clock time as milliseconds since the Unix epoch: what is stored (a rollout's stage start)
// and what ages things out (a kept prediction, a quality or drift bucket).
#pragma once

#include <chrono>
#include <cstdint>

namespace forklift {

inline std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace forklift
