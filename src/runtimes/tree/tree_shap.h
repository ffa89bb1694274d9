// Per-prediction explanations for a native forest: exact path-dependent TreeSHAP (Lundberg et
// al., "From local explanations to global understanding with explainable AI for trees", 2020,
// Algorithm 2), as XGBoost's `pred_contribs` computes it. For one row, each feature's
// contribution to each output's margin, and the bias (the expected margin over the training
// data, as the trees' node covers record it): the contributions and the bias add up to the
// margin the row gets, before the objective's transform.
//
// The cost is about trees x leaves x depth^2 per row (eta, 400 trees of depth 6: see
// docs/explanation/performance.md), against trees x depth for a prediction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "forklift/status.h"
#include "runtimes/tree/forest.h"

namespace forklift::tree {

// Deeper trees are not explained: the walk recurses once per level, and keeps a path of
// depth^2 / 2 entries.
inline constexpr int kMaxExplainedDepth = 128;

// One request's explanations may take at most this many steps (for each row, the sum over every
// leaf of (its depth + 1)^2: about 3 ns each, so about 0.1 s), and give at most this many values
// (rows x outputs x (features + 1): a few MB of JSON). eta: about a million steps a row.
inline constexpr std::uint64_t kMaxExplainSteps = 32'000'000;
inline constexpr std::uint64_t kMaxExplainValues = 131'072;

class TreeExplainer {
 public:
  // Needs every node's cover (its training rows' hessian sum; XGBoost's `sum_hessian`), finite
  // and positive.
  static Result<TreeExplainer> build(const Forest& forest);

  // The work of one row (see kMaxExplainSteps).
  std::uint64_t steps_per_row() const { return steps_per_row_; }
  // OK when `rows` rows (at least one is assumed) stay within kMaxExplainSteps and
  // kMaxExplainValues; else FailedPrecondition saying how many rows would.
  Status check_budget(std::size_t rows) const;

  // Values per row: per output group, one per feature and then the bias.
  std::size_t values_per_row() const { return groups_ * (features_ + 1); }

  // `out`: values_per_row() values, written (not added to).
  void explain(const float* row, double* out) const;

 private:
  struct PathElement {
    std::int32_t feature;
    double zero_fraction;
    double one_fraction;
    double weight;
  };
  void walk(const float* row, double* phi, std::int32_t node, int depth, PathElement* parent_path,
            double zero_fraction, double one_fraction, std::int32_t feature) const;

  const Forest* forest_ = nullptr;
  std::size_t groups_ = 1;
  std::size_t features_ = 0;
  int max_depth_ = 0;
  std::uint64_t steps_per_row_ = 0;
  std::vector<double> tree_expected_;  // each tree's mean leaf value, weighted by cover
};

}  // namespace forklift::tree
