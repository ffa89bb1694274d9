// The built-in `xgboost` runtime: an XGBoost model file (JSON or UBJSON), served by forklift's
// native tree engine (runtimes/tree/) when that engine can read the model and predicts what the
// XGBoost library predicts on rows that take every split both ways (engine_check.h), else by the
// library through its C API, a whole batch in one in-place call (XGBoosterPredictFromDense, no
// DMatrix). model.yaml's `engine` chooses: auto (that rule), native (the engine or a failed
// load), library.
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
#include "runtimes/tree/engine_check.h"
#include "runtimes/tree/forest_model.h"
#include "runtimes/xgboost_library.h"

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

Status xgb_error(const LoadContext& ctx, const std::string& what) {
  return FailedPrecondition(ctx.artifact.string() + ": " + what + ": " + xgboost_last_error());
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

  Engine engine() const override { return {"library", note_}; }
  Status explain(const Batch&, Explanation&) const override {
    return FailedPrecondition(
        "it is served by the XGBoost library, and explanations come from forklift's native "
        "engine (model.yaml's engine, or the log's native_engine_refused, says why it is not "
        "used)");
  }
  void set_note(std::string note) { note_ = std::move(note); }

  // The library's values for `rows` rows (engine_check.h's LibraryOutput), copied out.
  Status raw(const float* data, std::size_t rows, tree::LibraryOutput what,
             std::vector<float>& out) const {
    const float* result = nullptr;
    std::size_t total = 0;
    if (Status s =
            xgboost_predict(booster_.get(), thread_proxy(), data, rows, cols_, what, result, total);
        !s.ok()) {
      return s;
    }
    out.assign(result, result + total);
    return Status::Ok();
  }

  // Predicts `rows` rows of raw floats; used at load to check the output shape.
  Status run(const float* data, std::size_t rows, std::vector<Value>& outputs) const {
    const float* result = nullptr;
    std::size_t total = 0;
    if (Status s = xgboost_predict(booster_.get(), thread_proxy(), data, rows, cols_,
                                   tree::LibraryOutput::kPredictions, result, total);
        !s.ok()) {
      return s;
    }
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
  std::string note_;
};

// The version's self-test inputs as dense rows, for the engine check.
std::vector<float> sample_rows(const LoadContext& ctx, std::size_t cols) {
  if (ctx.sample_rows == nullptr || ctx.sample_rows->rows() == 0) return {};
  const float* m = dense_matrix(*ctx.sample_rows, cols);
  return std::vector<float>(m, m + ctx.sample_rows->rows() * cols);
}

// The model file as the native engine reads it, or why it cannot. An InvalidArgument is a file
// XGBoost itself would misread (a broken tree, a right child that is not its left one plus one,
// a key twice): the version is refused whatever the engine, before the library predicts a row
// (a broken tree can send XGBoost's predictor round in a loop).
Result<tree::Forest> read_native(const LoadContext& ctx) {
  auto text = tree::read_model_text(ctx.artifact);
  if (!text.ok()) return text.status();
  // JSON: '{' then a key's quote. UBJSON's '{' is followed by a type marker ('L', 'i', 'U').
  const std::size_t first = text->find_first_not_of(" \t\r\n");
  const std::size_t second =
      first == std::string::npos ? first : text->find_first_not_of(" \t\r\n", first + 1);
  if (second == std::string::npos || (*text)[first] != '{' || (*text)[second] != '"') {
    return FailedPrecondition(
        "it reads XGBoost's JSON format only, and this file is UBJSON or "
        "the old binary format (save the model as model.json)");
  }
  return tree::parse_xgboost_json(*text, ctx.artifact.filename().string());
}

// The native engine for this version, or why not: `forest` must fit model.yaml's output and
// predict what the library predicts (engine_check.h).
Result<std::unique_ptr<tree::ForestModel>> checked_native(const LoadContext& ctx,
                                                          const XGBoostModel& library,
                                                          std::size_t cols, tree::Forest forest) {
  if (forest.num_features != cols) {
    return FailedPrecondition("the engine reads " + std::to_string(forest.num_features) +
                              " feature columns where XGBoost reads " + std::to_string(cols));
  }
  if (Status s = tree::check_output_fits(forest, *ctx.schema, ctx.artifact.filename().string());
      !s.ok()) {
    return s;
  }
  const auto predict = [&library](const float* rows, std::size_t n, tree::LibraryOutput what,
                                  std::vector<float>& out) {
    return library.raw(rows, n, what, out);
  };
  auto report = tree::check_against_library(forest, predict, sample_rows(ctx, cols));
  if (!report.ok()) {
    return FailedPrecondition("its predictions differ from XGBoost's: " +
                              report.status().message());
  }
  return std::make_unique<tree::ForestModel>(std::move(forest), *ctx.schema,
                                             "checked against XGBoost on " + report->summary());
}

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
  // Read by the native engine first: a file XGBoost would misread is refused before the library
  // predicts anything (read_native).
  auto forest = read_native(ctx);
  if (!forest.ok() && forest.status().code() == StatusCode::kInvalidArgument) {
    return FailedPrecondition(ctx.artifact.string() +
                              ": a tree XGBoost would misread: " + forest.status().message());
  }
  auto model = std::make_unique<XGBoostModel>(std::move(booster), *ctx.schema, *cols);
  // One probe row checks that the output shape matches the manifest before any self-test runs.
  std::vector<float> probe(*cols, 0.0f);
  std::vector<Value> out;
  if (Status s = model->run(probe.data(), 1, out); !s.ok()) {
    return FailedPrecondition(ctx.artifact.string() + ": " + s.message());
  }
  const std::string engine = ctx.engine.empty() ? "auto" : ctx.engine;
  if (engine == "library") {
    model->set_note("model.yaml asks for engine: library");
    return std::unique_ptr<Model>(std::move(model));
  }
  Result<std::unique_ptr<tree::ForestModel>> native =
      forest.ok() ? checked_native(ctx, *model, *cols, std::move(forest).value())
                  : Result<std::unique_ptr<tree::ForestModel>>(forest.status());
  if (native.ok()) return std::unique_ptr<Model>(std::move(native).value());
  if (engine == "native") {
    return FailedPrecondition(ctx.artifact.string() + ": engine: native, but the native engine " +
                              "cannot serve this model: " + native.status().message());
  }
  model->set_note("the native engine cannot serve this model: " + native.status().message());
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace

void register_xgboost_runtime() {
  register_runtime(RuntimeInfo{"xgboost", "xgboost_json", load_xgboost});
}

}  // namespace forklift
