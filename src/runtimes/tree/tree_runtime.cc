// The built-in `tree` runtime: tree ensembles evaluated by forklift itself (forest.h), from an
// XGBoost JSON model file. Features become columns as for the xgboost runtime (a bool 0/1, a
// float_vector `length` columns, a missing value NaN); the output is one float per row.
#include <memory>
#include <vector>

#include "runtimes/runtime_registry.h"
#include "runtimes/tree/forest.h"

namespace forklift {
namespace {

class TreeModel final : public Model {
 public:
  explicit TreeModel(tree::Forest forest) : forest_(std::move(forest)) {}

  Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
    thread_local std::vector<float> row;
    row.resize(forest_.num_features);
    for (std::size_t r = 0; r < batch.rows(); ++r) {
      const RowView values = batch.row(r);
      float* cell = row.data();
      for (std::size_t i = 0; i < values.size(); ++i) {
        const Value& v = values[i];
        if (const auto* d = std::get_if<double>(&v)) {
          *cell++ = static_cast<float>(*d);
        } else if (const auto* n = std::get_if<std::int64_t>(&v)) {
          *cell++ = static_cast<float>(*n);
        } else if (const auto* b = std::get_if<bool>(&v)) {
          *cell++ = *b ? 1.0f : 0.0f;
        } else if (const auto* vec = std::get_if<std::vector<float>>(&v)) {
          for (float f : *vec) *cell++ = f;
        }
      }
      outputs.emplace_back(forest_.predict(row.data()));
    }
    return Status::Ok();
  }

 private:
  tree::Forest forest_;
};

Result<std::unique_ptr<Model>> load_tree(const LoadContext& ctx) {
  std::size_t cols = 0;
  for (const auto& f : ctx.schema->features) {
    if (f.type == ValueType::kString) {
      return InvalidArgument("the tree runtime cannot take string feature '" + f.name +
                             "'; encode it as a number");
    }
    cols += f.length;
  }
  if (ctx.schema->output.type != ValueType::kFloat) {
    return InvalidArgument(
        "the tree runtime produces one float per row; output.type must be float");
  }
  auto forest = tree::load_xgboost_json(ctx.artifact);
  if (!forest.ok()) return forest.status();
  if (forest->num_features != cols) {
    return FailedPrecondition(
        ctx.artifact.string() + ": the model expects " + std::to_string(forest->num_features) +
        " feature columns but model.yaml's features make " + std::to_string(cols));
  }
  return std::unique_ptr<Model>(std::make_unique<TreeModel>(std::move(forest).value()));
}

}  // namespace

void register_tree_runtime() {
  register_runtime(RuntimeInfo{"tree", "forklift_tree", load_tree});
}

}  // namespace forklift
