#include "runtimes/tree/tree_shap.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace forklift::tree {

Result<TreeExplainer> TreeExplainer::build(const Forest& forest) {
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
  for (std::size_t t = 0; t < forest.roots.size(); ++t) {
    // A tree's nodes are contiguous and breadth-first: every child comes after its parent.
    const auto first = static_cast<std::size_t>(forest.roots[t]);
    const std::size_t end = t + 1 < forest.roots.size()
                                ? static_cast<std::size_t>(forest.roots[t + 1])
                                : forest.nodes.size();
    depth.assign(end - first, 0);
    for (std::size_t i = first; i < end; ++i) {
      const Node& n = forest.nodes[i];
      if (n.feature < 0) {
        const auto d = static_cast<std::uint64_t>(depth[i - first]) + 1;
        e.steps_per_row_ += d * d;  // at most 129^2 per leaf; leaves are bounded by the file
        continue;
      }
      const int d = depth[i - first] + 1;
      if (d > kMaxExplainedDepth) {
        return FailedPrecondition("tree " + std::to_string(t) + " is deeper than " +
                                  std::to_string(kMaxExplainedDepth) +
                                  " levels, more than explanations follow");
      }
      const auto left = static_cast<std::size_t>(n.left);
      depth[left - first] = depth[left + 1 - first] = d;
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
  return e;
}

Status TreeExplainer::check_budget(std::size_t rows) const {
  rows = std::max<std::size_t>(rows, 1);
  const std::uint64_t values = values_per_row();
  const std::uint64_t by_steps = kMaxExplainSteps / std::max<std::uint64_t>(steps_per_row_, 1);
  const std::uint64_t by_values = kMaxExplainValues / std::max<std::uint64_t>(values, 1);
  const std::uint64_t most = std::min(by_steps, by_values);
  if (rows <= most) return Status::Ok();
  const std::string why = by_steps <= by_values
                              ? "each row takes about " + std::to_string(steps_per_row_) +
                                    " steps (leaves x depth^2 over its trees), and a request at "
                                    "most " +
                                    std::to_string(kMaxExplainSteps)
                              : "each row gives " + std::to_string(values) +
                                    " values, and a request at most " +
                                    std::to_string(kMaxExplainValues);
  if (most == 0)
    return FailedPrecondition("this model is too large to explain even one row: " + why);
  return FailedPrecondition("at most " + std::to_string(most) +
                            " rows of this model can be explained per request: " + why);
}

namespace {

// The path of unique features from the root to the current node, with the weight of each
// subset size (the permutations that include the features before it): extended by one feature.
template <class Element>
void extend_path(Element* path, int depth, double zero_fraction, double one_fraction,
                 std::int32_t feature) {
  path[depth] = {feature, zero_fraction, one_fraction, depth == 0 ? 1.0 : 0.0};
  for (int i = depth - 1; i >= 0; --i) {
    path[i + 1].weight += one_fraction * path[i].weight * (i + 1) / (depth + 1);
    path[i].weight = zero_fraction * path[i].weight * (depth - i) / (depth + 1);
  }
}

// Undoes extend_path for the element at `index` (a feature met again further down).
template <class Element>
void unwind_path(Element* path, int depth, int index) {
  const double one_fraction = path[index].one_fraction;
  const double zero_fraction = path[index].zero_fraction;
  double next_one_portion = path[depth].weight;
  for (int i = depth - 1; i >= 0; --i) {
    if (one_fraction != 0) {
      const double tmp = path[i].weight;
      path[i].weight = next_one_portion * (depth + 1) / ((i + 1) * one_fraction);
      next_one_portion = tmp - path[i].weight * zero_fraction * (depth - i) / (depth + 1);
    } else {
      path[i].weight = path[i].weight * (depth + 1) / (zero_fraction * (depth - i));
    }
  }
  for (int i = index; i < depth; ++i) {
    path[i].feature = path[i + 1].feature;
    path[i].zero_fraction = path[i + 1].zero_fraction;
    path[i].one_fraction = path[i + 1].one_fraction;
  }
}

// The total weight the path would have with the element at `index` unwound.
template <class Element>
double unwound_path_sum(const Element* path, int depth, int index) {
  const double one_fraction = path[index].one_fraction;
  const double zero_fraction = path[index].zero_fraction;
  double next_one_portion = path[depth].weight;
  double total = 0;
  for (int i = depth - 1; i >= 0; --i) {
    if (one_fraction != 0) {
      const double tmp = next_one_portion * (depth + 1) / ((i + 1) * one_fraction);
      total += tmp;
      next_one_portion = path[i].weight - tmp * zero_fraction * (depth - i) / (depth + 1);
    } else if (zero_fraction != 0) {
      total += path[i].weight / zero_fraction / ((depth - i) / static_cast<double>(depth + 1));
    }
  }
  return total;
}

}  // namespace

void TreeExplainer::walk(const float* row, double* phi, std::int32_t node_index, int depth,
                         PathElement* parent_path, double zero_fraction, double one_fraction,
                         std::int32_t feature) const {
  const Forest& f = *forest_;
  const Node& node = f.nodes[static_cast<std::size_t>(node_index)];
  PathElement* path = parent_path + depth + 1;
  std::copy(parent_path, parent_path + depth + 1, path);
  extend_path(path, depth, zero_fraction, one_fraction, feature);

  if (node.feature < 0) {
    for (int i = 1; i <= depth; ++i) {
      const double w = unwound_path_sum(path, depth, i);
      phi[path[i].feature] += w * (path[i].one_fraction - path[i].zero_fraction) * node.value;
    }
    return;
  }
  const std::int32_t hot = f.child_taken(node_index, row);
  const std::int32_t cold = hot == node.left ? node.left + 1 : node.left;
  const double cover = f.cover[static_cast<std::size_t>(node_index)];
  const double hot_zero_fraction = f.cover[static_cast<std::size_t>(hot)] / cover;
  const double cold_zero_fraction = f.cover[static_cast<std::size_t>(cold)] / cover;
  double incoming_zero_fraction = 1;
  double incoming_one_fraction = 1;
  // A feature already on the path: its earlier split is undone, to be redone here.
  int index = 0;
  while (index <= depth && path[index].feature != node.feature) ++index;
  if (index <= depth) {
    incoming_zero_fraction = path[index].zero_fraction;
    incoming_one_fraction = path[index].one_fraction;
    unwind_path(path, depth, index);
    depth -= 1;
  }
  walk(row, phi, hot, depth + 1, path, hot_zero_fraction * incoming_zero_fraction,
       incoming_one_fraction, node.feature);
  walk(row, phi, cold, depth + 1, path, cold_zero_fraction * incoming_zero_fraction, 0,
       node.feature);
}

void TreeExplainer::explain(const float* row, double* out) const {
  const Forest& f = *forest_;
  const std::size_t width = features_ + 1;
  std::fill(out, out + values_per_row(), 0.0);
  // Room for the path of every level: each level's copy follows its parent's.
  const std::size_t longest = static_cast<std::size_t>(max_depth_) + 2;
  thread_local std::vector<PathElement> path;
  thread_local std::vector<double> tree_phi;
  path.resize(longest * (longest + 1) / 2);
  tree_phi.resize(width);
  for (std::size_t t = 0; t < f.roots.size(); ++t) {
    double* phi = out + (f.num_groups > 1 ? static_cast<std::size_t>(f.tree_group[t]) : 0) * width;
    std::fill(tree_phi.begin(), tree_phi.end(), 0.0);
    walk(row, tree_phi.data(), f.roots[t], 0, path.data(), 1, 1, -1);
    tree_phi[features_] += tree_expected_[t];
    for (std::size_t i = 0; i < width; ++i) phi[i] += f.leaf_scale * tree_phi[i];
  }
  for (std::size_t g = 0; g < groups_; ++g) out[g * width + features_] += f.base_margin;
}

}  // namespace forklift::tree
