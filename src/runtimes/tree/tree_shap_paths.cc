// TreeSHAP by path weights (Lundberg et al., 2020, Algorithm 2), as XGBoost's pred_contribs
// computes it: the reference the quadrature walk is checked against, and the walk for forests
// too deep or too large for quadrature (tree_shap.h).
#include <algorithm>

#include "runtimes/tree/tree_shap_walks.h"

namespace forklift::tree::shap {
namespace {

// The path of unique features from the root to the current node, with the weight of each
// subset size (the permutations that include the features before it): extended by one feature.
void extend_path(PathElement* path, int depth, double zero_fraction, double one_fraction,
                 std::int32_t feature) {
  path[depth] = {feature, zero_fraction, one_fraction, depth == 0 ? 1.0 : 0.0};
  for (int i = depth - 1; i >= 0; --i) {
    path[i + 1].weight += one_fraction * path[i].weight * (i + 1) / (depth + 1);
    path[i].weight = zero_fraction * path[i].weight * (depth - i) / (depth + 1);
  }
}

// Undoes extend_path for the element at `index` (a feature met again further down).
void unwind_path(PathElement* path, int depth, int index) {
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
double unwound_path_sum(const PathElement* path, int depth, int index) {
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

void walk(const Forest& f, const float* row, double scale, double* phi, std::int32_t node_index,
          int depth, PathElement* parent_path, double zero_fraction, double one_fraction,
          std::int32_t feature) {
  const Node& node = f.nodes[static_cast<std::size_t>(node_index)];
  PathElement* path = parent_path + depth + 1;
  std::copy(parent_path, parent_path + depth + 1, path);
  extend_path(path, depth, zero_fraction, one_fraction, feature);

  if (node.feature < 0) {
    for (int i = 1; i <= depth; ++i) {
      const double w = unwound_path_sum(path, depth, i);
      phi[path[i].feature] +=
          scale * w * (path[i].one_fraction - path[i].zero_fraction) * node.value;
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
  walk(f, row, scale, phi, hot, depth + 1, path, hot_zero_fraction * incoming_zero_fraction,
       incoming_one_fraction, node.feature);
  walk(f, row, scale, phi, cold, depth + 1, path, cold_zero_fraction * incoming_zero_fraction, 0,
       node.feature);
}

}  // namespace

void add_by_path_weights(const Forest& forest, std::int32_t root, const float* row,
                         PathElement* path, double scale, double* phi) {
  walk(forest, row, scale, phi, root, 0, path, 1, 1, -1);
}

}  // namespace forklift::tree::shap
