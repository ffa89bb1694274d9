// A Forest as a Model: what the `tree` runtime serves, and the `xgboost` runtime when its native
// engine passed the check against the library (engine_check.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "forklift/runtime.h"
#include "runtimes/tree/forest.h"
#include "runtimes/tree/tree_shap.h"

namespace forklift::tree {

class ForestModel final : public Model {
 public:
  ForestModel(Forest forest, const Schema& schema, std::string note = {});
  // The explainer points into forest_: the model stays where it was made.
  ForestModel(const ForestModel&) = delete;
  ForestModel& operator=(const ForestModel&) = delete;

  Status predict(const Batch& batch, std::vector<Value>& outputs) const override;
  Engine engine() const override { return {"native", note_}; }
  Status explain(const Batch& batch, Explanation& out) const override;
  const Forest& forest() const { return forest_; }

 private:
  Forest forest_;
  bool vector_output_;
  std::string note_;
  // Built with the version, so that its tables (16 bytes a node) count in the version's
  // measured memory; or why this model cannot be explained.
  Result<TreeExplainer> explainer_;
};

// Whether model.yaml's output can hold what `forest` predicts per row: a float for one value, a
// float_vector of that length for several. The message names the output and both counts.
Status check_output_fits(const Forest& forest, const Schema& schema, const std::string& origin);

}  // namespace forklift::tree
