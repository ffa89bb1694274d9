#include "runtimes/xgboost_library.h"

#include <xgboost/c_api.h>

#include <cstdint>
#include <cstdio>
#include <memory>

namespace forklift {

std::string xgboost_last_error() {
  std::string message = XGBGetLastError();
  if (auto cut = message.find("\nStack trace"); cut != std::string::npos) message.resize(cut);
  return message;
}

Status xgboost_predict(void* booster, void* proxy, const float* data, std::size_t rows,
                       std::size_t cols, tree::LibraryOutput what, const float*& result,
                       std::size_t& total) {
  const bst_ulong* shape = nullptr;
  bst_ulong dims = 0;
  if (what == tree::LibraryOutput::kLeaves || what == tree::LibraryOutput::kContributions) {
    // Leaf ids (type 6) and contributions (type 2) are not offered by in-place prediction.
    DMatrixHandle matrix = nullptr;
    if (XGDMatrixCreateFromMat(data, rows, cols, std::numeric_limits<float>::quiet_NaN(),
                               &matrix) != 0) {
      return Internal("XGBoost cannot take the rows: " + xgboost_last_error());
    }
    const std::unique_ptr<void, int (*)(DMatrixHandle)> owned(matrix, XGDMatrixFree);
    static constexpr char kLeaves[] =
        R"({"type":6,"training":false,"iteration_begin":0,"iteration_end":0,"strict_shape":false})";
    static constexpr char kContributions[] =
        R"({"type":2,"training":false,"iteration_begin":0,"iteration_end":0,"strict_shape":false})";
    if (XGBoosterPredictFromDMatrix(booster, matrix,
                                    what == tree::LibraryOutput::kLeaves ? kLeaves : kContributions,
                                    &shape, &dims, &result) != 0) {
      return Internal("XGBoost prediction failed: " + xgboost_last_error());
    }
  } else {
    char array_interface[160];
    std::snprintf(array_interface, sizeof array_interface,
                  R"({"data":[%llu,true],"shape":[%zu,%zu],"typestr":"<f4","version":3})",
                  static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(data)), rows,
                  cols);
    // type 0: predictions, 1: margins.
    static constexpr char kPredict[] =
        R"({"type":0,"training":false,"iteration_begin":0,"iteration_end":0,"strict_shape":false,"cache_id":0,"missing":NaN})";
    static constexpr char kMargin[] =
        R"({"type":1,"training":false,"iteration_begin":0,"iteration_end":0,"strict_shape":false,"cache_id":0,"missing":NaN})";
    if (XGBoosterPredictFromDense(booster, array_interface,
                                  what == tree::LibraryOutput::kMargins ? kMargin : kPredict, proxy,
                                  &shape, &dims, &result) != 0) {
      return Internal("XGBoost prediction failed: " + xgboost_last_error());
    }
  }
  total = 1;
  for (bst_ulong d = 0; d < dims; ++d) total *= shape[d];
  return Status::Ok();
}

}  // namespace forklift
