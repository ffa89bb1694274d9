// The two walks that compute one tree's TreeSHAP contributions for one row (tree_shap.h uses
// them; the tests compare them): both exact, of different cost.
#pragma once

#include <cstdint>
#include <vector>

#include "runtimes/tree/forest.h"

namespace forklift::tree::shap {

// Lundberg et al.'s Algorithm 2, as XGBoost's pred_contribs runs it: each leaf's path carries
// the weight of every subset size, extended and unwound per level. About leaves x depth^2 steps
// a tree. `path` has room for (max_depth + 2) (max_depth + 3) / 2 elements.
struct PathElement {
  std::int32_t feature;
  double zero_fraction;
  double one_fraction;
  double weight;
};
void add_by_path_weights(const Forest& forest, std::int32_t root, const float* row,
                         PathElement* path, double scale, double* phi);

// The same values by quadrature, in about nodes x lanes steps a tree. A leaf's contribution to a
// feature i on its path is
//   value x (o_i - z_i) x the integral over [0, 1] of the product over the path's other
//   features j of (z_j + (o_j - z_j) y) dy,
// where z_j is the share of cover the path keeps at j's splits and o_j is 1 when the row follows
// them all (the Shapley weights |S|! (d - |S| - 1)! / d! are Beta integrals). The integrand is a
// polynomial of degree below the tree's depth, so Gauss-Legendre quadrature with depth / 2 points
// is exact; the sums over leaves are gathered node by node from the leaves up, so a tree costs
// its nodes times the points, not its leaves times depth^2.
struct Quadrature {
  int lanes = 0;                     // points, rounded up to 4, 8, 16, 32 or 64 (padding weighs 0)
  std::vector<double> points;        // in (0, 1)
  std::vector<double> weights;       // summing to 1
  std::vector<double> cold_weights;  // weights / (1 - points): a branch the row does not take
};
// Exact for polynomials of degree < 2 x points; lanes() <= 64.
Quadrature gauss_legendre(int points);

// What quadrature needs of each node of a forest that does not depend on the row: for the edge
// from its parent, the share of cover kept at the splits on that edge's feature from the root
// down, and the node below the nearest edge above on the same feature (-1: none).
struct EdgeTables {
  std::vector<double> kept;  // one more entry, n: "no edge above", a share of 1
  std::vector<std::int32_t> same_feature_above;
  std::vector<std::int32_t> edge_feature;  // the parent's split feature (the root's: 0)
};
EdgeTables edge_tables(const Forest& forest);

// Adds `scale` x one tree's contributions for `row` to phi (one per feature).
void add_by_quadrature(const Forest& forest, std::size_t tree, const float* row,
                       const Quadrature& quadrature, const EdgeTables& edges, double scale,
                       double* phi);

}  // namespace forklift::tree::shap
