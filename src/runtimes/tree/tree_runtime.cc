// The built-in `tree` runtime: tree ensembles evaluated by forklift itself (forest.h), from an
// XGBoost JSON or LightGBM text model file. Features become columns as for the xgboost runtime (a
// bool 0/1, a float_vector `length` columns, a missing value NaN); the output is a float per row,
// or a float_vector for a model with several outputs (classes or targets).
#include <memory>
#include <vector>

#include "forklift/runtime.h"
#include "runtimes/dense_rows.h"
#include "runtimes/tree/forest_model.h"

namespace forklift {
namespace {

Result<std::unique_ptr<Model>> load_tree(const LoadContext& ctx) {
  Result<std::size_t> cols = dense_columns(*ctx.schema, "tree");
  if (!cols.ok()) return cols.status();
  if (ctx.schema->output.type != ValueType::kFloat &&
      ctx.schema->output.type != ValueType::kFloatVector) {
    return InvalidArgument(
        "the tree runtime produces floats; output.type must be float or "
        "float_vector");
  }
  auto forest = tree::load_forest(ctx.artifact);
  if (!forest.ok()) return forest.status();
  if (forest->num_features != *cols) {
    return FailedPrecondition(
        ctx.artifact.string() + ": the model expects " + std::to_string(forest->num_features) +
        " feature columns but model.yaml's features make " + std::to_string(*cols));
  }
  if (Status s = tree::check_output_fits(*forest, *ctx.schema, ctx.artifact.string()); !s.ok()) {
    return s;
  }
  return std::unique_ptr<Model>(
      std::make_unique<tree::ForestModel>(std::move(forest).value(), *ctx.schema));
}

}  // namespace

void register_tree_runtime() {
  register_runtime(RuntimeInfo{"tree", "forklift_tree", load_tree});
}

}  // namespace forklift
