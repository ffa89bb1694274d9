// About how many bytes values take in memory: what a queue holding batches or outputs counts
// against its byte bound (a count bound alone lets a few large requests fill the machine).
#pragma once

#include <cstddef>
#include <string>
#include <variant>
#include <vector>

#include "forklift/types.h"

namespace forklift {

// One value: the variant itself plus what a string or vector owns on the heap.
inline std::size_t value_bytes(const Value& v) {
  std::size_t n = sizeof(Value);
  if (const auto* s = std::get_if<std::string>(&v)) {
    n += s->capacity();
  } else if (const auto* vec = std::get_if<std::vector<float>>(&v)) {
    n += vec->capacity() * sizeof(float);
  }
  return n;
}

inline std::size_t values_bytes(const std::vector<Value>& values) {
  std::size_t n = 0;
  for (const Value& v : values) n += value_bytes(v);
  return n;
}

inline std::size_t batch_bytes(const Batch& batch) {
  std::size_t n = 0;
  for (std::size_t r = 0; r < batch.rows(); ++r) {
    const RowView row = batch.row(r);
    for (std::size_t i = 0; i < row.size(); ++i) n += value_bytes(row[i]);
  }
  return n;
}

}  // namespace forklift
