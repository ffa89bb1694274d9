// The built-in `tree` runtime: tree ensembles evaluated by forklift itself (forest.h), from an
// XGBoost JSON or LightGBM text model file. Features become columns as for the xgboost runtime (a
// bool 0/1, a float_vector `length` columns, a missing value NaN); the output is one float per row.
#include <memory>
#include <vector>

#include "forklift/runtime.h"
#include "runtimes/dense_rows.h"
#include "runtimes/tree/forest.h"

namespace forklift {
namespace {

class TreeModel final : public Model {
 public:
  explicit TreeModel(tree::Forest forest) : forest_(std::move(forest)) {}

  Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
    const std::size_t cols = forest_.num_features;
    const float* matrix = dense_matrix(batch, cols);
    for (std::size_t r = 0; r < batch.rows(); ++r) {
      outputs.emplace_back(forest_.predict(matrix + r * cols));
    }
    return Status::Ok();
  }

 private:
  tree::Forest forest_;
};

Result<std::unique_ptr<Model>> load_tree(const LoadContext& ctx) {
  Result<std::size_t> cols = dense_columns(*ctx.schema, "tree");
  if (!cols.ok()) return cols.status();
  if (ctx.schema->output.type != ValueType::kFloat) {
    return InvalidArgument(
        "the tree runtime produces one float per row; output.type must be float");
  }
  auto forest = tree::load_forest(ctx.artifact);
  if (!forest.ok()) return forest.status();
  if (forest->num_features != *cols) {
    return FailedPrecondition(
        ctx.artifact.string() + ": the model expects " + std::to_string(forest->num_features) +
        " feature columns but model.yaml's features make " + std::to_string(*cols));
  }
  return std::unique_ptr<Model>(std::make_unique<TreeModel>(std::move(forest).value()));
}

}  // namespace

void register_tree_runtime() {
  register_runtime(RuntimeInfo{"tree", "forklift_tree", load_tree});
}

}  // namespace forklift
