// Calls into the XGBoost C API, shared by the xgboost runtime and bench/tree_benchmark.cc.
#pragma once

#include <cstddef>
#include <string>

#include "forklift/status.h"
#include "runtimes/tree/engine_check.h"

namespace forklift {

// XGBoost's last error on this thread, without the stack trace it appends.
std::string xgboost_last_error();

// The library's values for `rows` rows of `cols` floats (NaN: missing), in `result` (the
// booster's buffer for this thread, valid until its next call here), `total` of them:
// predictions or margins by in-place prediction through `proxy` (a proxy DMatrix kept per
// thread: without one XGBoost builds one per call), or each row's leaf in each tree through a
// DMatrix made for the call, as are the contributions (per row, per output, each feature's then
// the bias).
Status xgboost_predict(void* booster, void* proxy, const float* data, std::size_t rows,
                       std::size_t cols, tree::LibraryOutput what, const float*& result,
                       std::size_t& total);

}  // namespace forklift
