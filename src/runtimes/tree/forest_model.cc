#include "runtimes/tree/forest_model.h"

#include "runtimes/dense_rows.h"

namespace forklift::tree {

ForestModel::ForestModel(Forest forest, const Schema& schema, std::string note)
    : forest_(std::move(forest)),
      vector_output_(schema.output.type == ValueType::kFloatVector),
      note_(std::move(note)),
      explainer_(TreeExplainer::build(forest_)) {}

Status ForestModel::explain(const Batch& batch, Explanation& out) const {
  if (!explainer_.ok()) return explainer_.status();
  const std::size_t rows = batch.rows(), width = explainer_->values_per_row();
  if (Status s = explainer_->check_budget(rows); !s.ok()) return s;
  const float* matrix = dense_matrix(batch, forest_.num_features);
  out.groups = forest_.num_groups;
  out.columns = forest_.num_features;
  out.values.resize(rows * width);
  for (std::size_t r = 0; r < rows; ++r) {
    explainer_->explain(matrix + r * forest_.num_features, out.values.data() + r * width);
  }
  return Status::Ok();
}

Status ForestModel::predict(const Batch& batch, std::vector<Value>& outputs) const {
  const std::size_t rows = batch.rows(), per_row = forest_.outputs_per_row();
  const float* matrix = dense_matrix(batch, forest_.num_features);
  thread_local std::vector<double> predictions;
  predictions.resize(rows * per_row);
  forest_.predict(matrix, rows, predictions.data());
  outputs.reserve(outputs.size() + rows);
  for (std::size_t r = 0; r < rows; ++r) {
    const double* p = predictions.data() + r * per_row;
    if (vector_output_) {
      outputs.emplace_back(std::vector<float>(p, p + per_row));
    } else {
      outputs.emplace_back(p[0]);
    }
  }
  // A thread keeps its scratch for the next call, but not the memory of one huge request.
  if (predictions.capacity() > (std::size_t{1} << 20)) std::vector<double>().swap(predictions);
  return Status::Ok();
}

Status check_output_fits(const Forest& forest, const Schema& schema, const std::string& origin) {
  const std::size_t per_row = forest.outputs_per_row();
  const OutputSpec& out = schema.output;
  if (out.type == ValueType::kFloat && per_row == 1) return Status::Ok();
  if (out.type == ValueType::kFloatVector && out.length == per_row) return Status::Ok();
  return FailedPrecondition(origin + ": the model predicts " + std::to_string(per_row) +
                            " value(s) per row but model.yaml's output '" + out.name + "' is not " +
                            (per_row == 1 ? std::string("a float")
                                          : "a float_vector of length " + std::to_string(per_row)));
}

}  // namespace forklift::tree
