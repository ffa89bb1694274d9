// The built-in `xgboost` runtime: loads an XGBoost model file (JSON or UBJSON) through the XGBoost
// C API and predicts a whole batch in one in-place call (XGBoosterPredictFromDense, no DMatrix).
//
// Thread safety: since XGBoost 1.4, prediction on a tree booster may be called from many threads;
// the output buffer it returns lives in per-thread storage of the booster and is copied out at
// once.
#include <xgboost/c_api.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "forklift/runtime.h"
#include "runtimes/dense_rows.h"

namespace forklift {
namespace {

struct BoosterDeleter {
  void operator()(void* h) const { XGBoosterFree(h); }
};
using BoosterPtr = std::unique_ptr<void, BoosterDeleter>;

struct DMatrixDeleter {
  void operator()(void* h) const { XGDMatrixFree(h); }
};
using DMatrixPtr = std::unique_ptr<void, DMatrixDeleter>;

// Without a proxy DMatrix, every in-place prediction builds a new one, and building one reads the
// cgroup CPU quota from /sys (measured: 40% of a one-row prediction spent in the kernel). One
// proxy per serving thread, reused across calls and models, avoids that.
DMatrixHandle thread_proxy() {
  thread_local DMatrixPtr proxy = [] {
    DMatrixHandle h = nullptr;
    if (XGProxyDMatrixCreate(&h) != 0) h = nullptr;
    return DMatrixPtr(h);
  }();
  return proxy.get();
}

// XGBoost's last error on this thread, without the stack trace it appends.
std::string last_error() {
  std::string message = XGBGetLastError();
  if (auto cut = message.find("\nStack trace"); cut != std::string::npos) message.resize(cut);
  return message;
}

Status xgb_error(const LoadContext& ctx, const std::string& what) {
  return FailedPrecondition(ctx.artifact.string() + ": " + what + ": " + last_error());
}

// Number of float columns a row becomes (dense_rows.h), if the output is one XGBoost can make.
Result<std::size_t> column_count(const Schema& schema) {
  Result<std::size_t> cols = dense_columns(schema, "xgboost");
  if (!cols.ok()) return cols;
  if (schema.output.type != ValueType::kFloat && schema.output.type != ValueType::kFloatVector) {
    return InvalidArgument(
        "the xgboost runtime produces floats; output.type must be float or "
        "float_vector");
  }
  return cols;
}

class XGBoostModel final : public Model {
 public:
  XGBoostModel(BoosterPtr booster, const Schema& schema, std::size_t cols)
      : booster_(std::move(booster)), schema_(schema), cols_(cols) {}

  Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
    return run(dense_matrix(batch, cols_), batch.rows(), outputs);
  }

  // Predicts `rows` rows of raw floats; used at load to check the output shape.
  Status run(const float* data, std::size_t rows, std::vector<Value>& outputs) const {
    char array_interface[160];
    std::snprintf(array_interface, sizeof array_interface,
                  R"({"data":[%llu,true],"shape":[%zu,%zu],"typestr":"<f4","version":3})",
                  static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(data)), rows,
                  cols_);
    static constexpr char kConfig[] =
        R"({"type":0,"training":false,"iteration_begin":0,"iteration_end":0,"strict_shape":false,"cache_id":0,"missing":NaN})";
    const bst_ulong* shape = nullptr;
    bst_ulong dims = 0;
    const float* result = nullptr;
    if (XGBoosterPredictFromDense(booster_.get(), array_interface, kConfig, thread_proxy(), &shape,
                                  &dims, &result) != 0) {
      return Internal("XGBoost prediction failed: " + last_error());
    }
    std::size_t total = 1;
    for (bst_ulong d = 0; d < dims; ++d) total *= shape[d];
    const std::size_t per_row = rows == 0 ? 0 : total / rows;
    if (per_row != schema_.output.length || per_row * rows != total) {
      return Internal("the model produces " + std::to_string(per_row) +
                      " value(s) per row but model.yaml's output '" + schema_.output.name +
                      "' declares " + std::to_string(schema_.output.length));
    }
    for (std::size_t r = 0; r < rows; ++r) {
      if (schema_.output.type == ValueType::kFloat) {
        outputs.emplace_back(static_cast<double>(result[r]));
      } else {
        outputs.emplace_back(std::vector<float>(result + r * per_row, result + (r + 1) * per_row));
      }
    }
    return Status::Ok();
  }

 private:
  BoosterPtr booster_;
  Schema schema_;
  std::size_t cols_;
};

Result<std::unique_ptr<Model>> load_xgboost(const LoadContext& ctx) {
  Result<std::size_t> cols = column_count(*ctx.schema);
  if (!cols.ok()) return cols.status();
  BoosterHandle raw = nullptr;
  if (XGBoosterCreate(nullptr, 0, &raw) != 0) return xgb_error(ctx, "cannot create a booster");
  BoosterPtr booster(raw);
  if (XGBoosterLoadModel(raw, ctx.artifact.c_str()) != 0) {
    // XGBoost's parse errors quote the file around the failure: not passed on, since whatever
    // the file holds must not reach an error message.
    return FailedPrecondition(ctx.artifact.string() +
                              ": XGBoost cannot load it as a model (not an XGBoost JSON, UBJSON "
                              "or binary model, or truncated)");
  }
  const std::string nthread = ctx.option("nthread", "1");
  if (XGBoosterSetParam(raw, "nthread", nthread.c_str()) != 0) {
    return xgb_error(ctx, "runtime_options.nthread '" + nthread + "' rejected");
  }
  bst_ulong features = 0;
  if (XGBoosterGetNumFeature(raw, &features) != 0) return xgb_error(ctx, "cannot read features");
  if (features != *cols) {
    return FailedPrecondition(ctx.artifact.string() + ": the model expects " +
                              std::to_string(features) + " feature columns but model.yaml's " +
                              "features make " + std::to_string(*cols));
  }
  auto model = std::make_unique<XGBoostModel>(std::move(booster), *ctx.schema, *cols);
  // One probe row checks that the output shape matches the manifest before any self-test runs.
  std::vector<float> probe(*cols, 0.0f);
  std::vector<Value> out;
  if (Status s = model->run(probe.data(), 1, out); !s.ok()) {
    return FailedPrecondition(ctx.artifact.string() + ": " + s.message());
  }
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace

void register_xgboost_runtime() {
  register_runtime(RuntimeInfo{"xgboost", "xgboost_json", load_xgboost});
}

}  // namespace forklift
