#include "runtimes/tree/tree_shap.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace forklift::tree {

Result<TreeExplainer> TreeExplainer::build(const Forest& forest, Walk preferred) {
  if (forest.cover.size() != forest.nodes.size()) {
    return FailedPrecondition(
        "the model file records no node covers (XGBoost's sum_hessian), which explanations "
        "need to weigh the branches a row does not take");
  }
  for (const float c : forest.cover) {
    if (!(std::isfinite(c) && c > 0)) {
      return FailedPrecondition(
          "the model file has a node cover (sum_hessian) that is not a finite positive number");
    }
  }
  TreeExplainer e;
  e.forest_ = &forest;
  e.groups_ = forest.num_groups;
  e.features_ = forest.num_features;
  e.tree_expected_.resize(forest.roots.size());
  std::vector<int> depth;
  std::vector<double> mean;
  // Quadrature multiplies cover shares along each path: the least product (a natural log) bounds
  // how small its values get (covers never grow down a path, so none exceeds 1).
  std::vector<double> low;
  double lowest = 0;
  std::uint64_t nodes = 0, largest_tree = 0, path_steps = 0;
  for (std::size_t t = 0; t < forest.roots.size(); ++t) {
    // A tree's nodes are contiguous and breadth-first: every child comes after its parent.
    const auto first = static_cast<std::size_t>(forest.roots[t]);
    const std::size_t end = forest.tree_end(t);
    depth.assign(end - first, 0);
    low.assign(end - first, 0.0);
    nodes += end - first;
    largest_tree = std::max<std::uint64_t>(largest_tree, end - first);
    for (std::size_t i = first; i < end; ++i) {
      const Node& n = forest.nodes[i];
      if (n.feature < 0) {
        const auto d = static_cast<std::uint64_t>(depth[i - first]) + 1;
        path_steps += d * d;  // at most 129^2 per leaf; leaves are bounded by the file
        continue;
      }
      const int d = depth[i - first] + 1;
      if (d > kMaxExplainedDepth) {
        return FailedPrecondition("tree " + std::to_string(t) + " is deeper than " +
                                  std::to_string(kMaxExplainedDepth) +
                                  " levels, more than explanations follow");
      }
      const auto left = static_cast<std::size_t>(n.left);
      for (const std::size_t child : {left, left + 1}) {
        depth[child - first] = d;
        // A trained model's children split their parent's rows: their covers add up to its.
        if (forest.cover[child] > 1.001 * forest.cover[i]) {
          return FailedPrecondition(
              "the model file has a node cover (sum_hessian) larger than its parent's, which no "
              "trained model has and explanations cannot weigh");
        }
        const double share = std::log(forest.cover[child] / forest.cover[i]);
        low[child - first] = low[i - first] + std::min(share, 0.0);
        lowest = std::min(lowest, low[child - first]);
      }
      e.max_depth_ = std::max(e.max_depth_, d);
    }
    // The expected value of each node, from the leaves up, weighted by the children's covers
    // and divided by the node's own (as XGBoost computes it).
    mean.assign(end - first, 0.0);
    for (std::size_t i = end; i-- > first;) {
      const Node& n = forest.nodes[i];
      if (n.feature < 0) {
        mean[i - first] = n.value;
        continue;
      }
      const auto left = static_cast<std::size_t>(n.left);
      mean[i - first] = (mean[left - first] * forest.cover[left] +
                         mean[left + 1 - first] * forest.cover[left + 1]) /
                        forest.cover[i];
    }
    e.tree_expected_[t] = mean[0];
  }
  e.quadrature_ = shap::gauss_legendre(std::max(1, (e.max_depth_ + 1) / 2));
  // Quadrature's factors z + (o - z) y are at least z (1 - y): over a deep path, the powers of
  // (1 - y) at the point nearest 1 would leave a double's normal range (depth past about 80);
  // such forests take the path-weights walk, as do forests whose largest tree would take
  // quadrature's scratch (8 bytes and 24 per point, a node) past 64 MB.
  const double nearest_one =
      *std::max_element(e.quadrature_.points.begin(), e.quadrature_.points.end());
  const auto lanes = static_cast<std::uint64_t>(e.quadrature_.lanes);
  const bool in_range = lowest + e.max_depth_ * std::log(1 - nearest_one) > -600;
  const bool small_scratch = largest_tree * (8 + 24 * lanes) <= (std::uint64_t{64} << 20);
  e.walk_ = preferred == Walk::kQuadrature && in_range && small_scratch ? Walk::kQuadrature
                                                                        : Walk::kPathWeights;
  if (e.walk_ == Walk::kQuadrature) e.edges_ = shap::edge_tables(forest);
  // A path-weights step costs about three of quadrature's (measured); every tree adds a step.
  e.steps_per_row_ =
      (e.walk_ == Walk::kQuadrature ? nodes * lanes : 3 * path_steps) + forest.roots.size();
  return e;
}

Status TreeExplainer::check_budget(std::size_t rows) const {
  rows = std::max<std::size_t>(rows, 1);
  const std::uint64_t values = values_per_row();
  const std::uint64_t by_steps = kMaxExplainSteps / std::max<std::uint64_t>(steps_per_row_, 1);
  const std::uint64_t by_values = kMaxExplainValues / std::max<std::uint64_t>(values, 1);
  const std::uint64_t most = std::min(by_steps, by_values);
  if (rows <= most) return Status::Ok();
  const std::string why =
      by_steps <= by_values
          ? "each row takes about " + std::to_string(steps_per_row_) +
                (walk_ == Walk::kQuadrature ? " steps (nodes x quadrature points over its trees)"
                                            : " steps (3 x leaves x depth^2 over its trees)") +
                ", and a request at most " + std::to_string(kMaxExplainSteps)
          : "each row gives " + std::to_string(values) + " values, and a request at most " +
                std::to_string(kMaxExplainValues);
  if (most == 0)
    return FailedPrecondition("this model is too large to explain even one row: " + why);
  return FailedPrecondition("at most " + std::to_string(most) +
                            " rows of this model can be explained per request: " + why);
}

void TreeExplainer::explain(const float* row, double* out) const {
  const Forest& f = *forest_;
  const std::size_t width = features_ + 1;
  std::fill(out, out + values_per_row(), 0.0);
  // The path-weights walk keeps each level's path after its parent's.
  const std::size_t longest = static_cast<std::size_t>(max_depth_) + 2;
  thread_local std::vector<shap::PathElement> path;
  if (walk_ == Walk::kPathWeights) path.resize(longest * (longest + 1) / 2);
  // Each tree adds to its group's values directly: a tree costs its nodes, not the features.
  for (std::size_t t = 0; t < f.roots.size(); ++t) {
    double* phi = out + (f.num_groups > 1 ? static_cast<std::size_t>(f.tree_group[t]) : 0) * width;
    if (walk_ == Walk::kQuadrature) {
      shap::add_by_quadrature(f, t, row, quadrature_, edges_, f.leaf_scale, phi);
    } else {
      shap::add_by_path_weights(f, f.roots[t], row, path.data(), f.leaf_scale, phi);
    }
    phi[features_] += f.leaf_scale * tree_expected_[t];
  }
  for (std::size_t g = 0; g < groups_; ++g) out[g * width + features_] += f.base_margin;
}

}  // namespace forklift::tree
