// Rows as dense float columns, the input of the numeric runtimes (xgboost, tree, torchscript):
// a float or int feature is one column, a bool 0 or 1, a float_vector `length` columns, a
// missing value NaN. String features have no such form.
#pragma once

#include <string>
#include <vector>

#include "forklift/status.h"
#include "forklift/types.h"

namespace forklift {

// The number of columns `schema`'s features make; InvalidArgument naming `runtime` for a string
// feature.
inline Result<std::size_t> dense_columns(const Schema& schema, const std::string& runtime) {
  std::size_t cols = 0;
  for (const auto& f : schema.features) {
    if (f.type == ValueType::kString) {
      return InvalidArgument("the " + runtime + " runtime cannot take string feature '" + f.name +
                             "'; encode it as a number");
    }
    cols += f.length;
  }
  return cols;
}

// Writes one row's columns from `cell` on; returns the position after them.
inline float* write_dense_row(const RowView& row, float* cell) {
  for (std::size_t i = 0; i < row.size(); ++i) {
    const Value& v = row[i];
    if (const auto* d = std::get_if<double>(&v)) {
      *cell++ = static_cast<float>(*d);  // NaN stays NaN: "missing"
    } else if (const auto* n = std::get_if<std::int64_t>(&v)) {
      *cell++ = static_cast<float>(*n);
    } else if (const auto* b = std::get_if<bool>(&v)) {
      *cell++ = *b ? 1.0f : 0.0f;
    } else if (const auto* vec = std::get_if<std::vector<float>>(&v)) {
      for (float f : *vec) *cell++ = f;
    }
  }
  return cell;
}

// The whole batch as one row-major [rows, cols] matrix, in a buffer this thread reuses: valid
// until the thread's next call.
inline float* dense_matrix(const Batch& batch, std::size_t cols) {
  thread_local std::vector<float> matrix;
  matrix.resize(batch.rows() * cols);
  float* cell = matrix.data();
  for (std::size_t r = 0; r < batch.rows(); ++r) cell = write_dense_row(batch.row(r), cell);
  return matrix.data();
}

}  // namespace forklift
