// Per-prediction explanations for a native forest: exact path-dependent TreeSHAP (Lundberg et
// al., "From local explanations to global understanding with explainable AI for trees", 2020),
// the values XGBoost's `pred_contribs` computes. For one row, each feature's contribution to each
// output's margin, and the bias (the expected margin over the training data, as the trees' node
// covers record it): the contributions and the bias add up to the margin the row gets, before
// the objective's transform.
//
// Two exact walks compute them (tree_shap_walks.h): by quadrature, about nodes x 4 steps a tree
// up to depth 8 (more points beyond), which is the one used; and XGBoost's path weights, about
// leaves x depth^2, for a forest with a tree past about depth 80 (where quadrature's products
// would leave a double's range) or too large for quadrature's scratch. Costs
// against a prediction's: docs/explanation/performance.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "forklift/status.h"
#include "runtimes/tree/forest.h"
#include "runtimes/tree/tree_shap_walks.h"

namespace forklift::tree {

// Deeper trees are not explained (the path-weights walk recurses once per level).
inline constexpr int kMaxExplainedDepth = 128;

// One request's explanations may take at most this many steps (see steps_per_row(): about 3-5 ns
// each, so about 0.1 s), and give at most this many values (rows x outputs x (features + 1): a
// few MB of JSON). eta: about 174,000 steps a row.
inline constexpr std::uint64_t kMaxExplainSteps = 32'000'000;
inline constexpr std::uint64_t kMaxExplainValues = 131'072;

class TreeExplainer {
 public:
  enum class Walk { kQuadrature, kPathWeights };

  // Needs every node's cover (its training rows' hessian sum; XGBoost's `sum_hessian`), finite,
  // positive, and no larger than its parent's (by more than rounding). Takes `preferred` unless
  // the depth rules quadrature out (the tests ask for each).
  static Result<TreeExplainer> build(const Forest& forest, Walk preferred = Walk::kQuadrature);

  Walk walk() const { return walk_; }

  // The work of one row (see kMaxExplainSteps): with quadrature, nodes x lanes over the trees;
  // with path weights, 3 x the sum over leaves of (depth + 1)^2 (a step costs three times as
  // much); plus one per tree.
  std::uint64_t steps_per_row() const { return steps_per_row_; }
  // OK when `rows` rows (at least one is assumed) stay within kMaxExplainSteps and
  // kMaxExplainValues; else FailedPrecondition saying how many rows would.
  Status check_budget(std::size_t rows) const;

  // Values per row: per output group, one per feature and then the bias.
  std::size_t values_per_row() const { return groups_ * (features_ + 1); }

  // `out`: values_per_row() values, written (not added to).
  void explain(const float* row, double* out) const;

 private:
  const Forest* forest_ = nullptr;
  Walk walk_ = Walk::kQuadrature;
  shap::Quadrature quadrature_;
  shap::EdgeTables edges_;  // empty unless walk_ is kQuadrature
  std::size_t groups_ = 1;
  std::size_t features_ = 0;
  int max_depth_ = 0;
  std::uint64_t steps_per_row_ = 0;
  std::vector<double> tree_expected_;  // each tree's mean leaf value, weighted by cover
};

}  // namespace forklift::tree
