// TreeSHAP by quadrature (tree_shap_walks.h), in two passes over a tree's nodes in their
// breadth-first order. Down: which way the row goes at each split, and at each node, per
// quadrature point y, the product over its path's features of (z + (o - z) y). Up: each node's
// sum of leaf value x product below it, and from it the contribution of the edge into it. Where
// a path meets a feature again, the feature's factor is the combined one, and the leaves below
// are the deeper edge's: the outer edge counts only the leaves whose last split on its feature it
// is (`excluded` hands the others up to it).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "runtimes/tree/tree_shap_walks.h"

namespace forklift::tree::shap {

Quadrature gauss_legendre(int points) {
  Quadrature q;
  q.lanes = 4;
  while (q.lanes < points) q.lanes *= 2;
  q.points.assign(static_cast<std::size_t>(q.lanes), 0.5);
  q.weights.assign(static_cast<std::size_t>(q.lanes), 0.0);
  // The roots of the Legendre polynomial P_n on [-1, 1] by Newton's method from Tricomi's
  // approximation, and their weights 2 / ((1 - t^2) P_n'(t)^2); then mapped to [0, 1].
  const int n = points;
  for (int i = 0; i < n; ++i) {
    double t = std::cos(std::numbers::pi * (i + 0.75) / (n + 0.5));
    double derivative = 1;
    for (int iteration = 0; iteration < 100; ++iteration) {
      double p = 1, previous = 0;
      for (int k = 1; k <= n; ++k) {
        const double before = previous;
        previous = p;
        p = ((2.0 * k - 1) * t * previous - (k - 1.0) * before) / k;
      }
      derivative = n * (t * p - previous) / (t * t - 1);
      const double step = p / derivative;
      t -= step;
      if (std::abs(step) < 1e-16) break;
    }
    q.points[static_cast<std::size_t>(i)] = (1 + t) / 2;
    q.weights[static_cast<std::size_t>(i)] = 1 / ((1 - t * t) * derivative * derivative);
  }
  q.cold_weights.resize(q.weights.size());
  for (std::size_t i = 0; i < q.weights.size(); ++i) {
    q.cold_weights[i] = q.weights[i] / (1 - q.points[i]);
  }
  return q;
}

EdgeTables edge_tables(const Forest& forest) {
  EdgeTables e;
  const std::size_t n = forest.nodes.size();
  e.kept.assign(n + 1, 1.0);
  e.same_feature_above.assign(n, -1);
  e.edge_feature.assign(n, 0);
  std::vector<std::int32_t> parent(n, -1);
  for (std::size_t t = 0; t < forest.roots.size(); ++t) {
    const auto first = static_cast<std::size_t>(forest.roots[t]);
    const std::size_t end = forest.tree_end(t);
    // Breadth-first: a node's parent, and everything above it, comes before it.
    for (std::size_t i = first; i < end; ++i) {
      const Node& node = forest.nodes[i];
      if (node.feature < 0) continue;
      std::int32_t above = -1;
      for (auto a = static_cast<std::int32_t>(i); a != forest.roots[t];) {
        const std::int32_t up = parent[static_cast<std::size_t>(a)];
        if (forest.nodes[static_cast<std::size_t>(up)].feature == node.feature) {
          above = a;
          break;
        }
        a = up;
      }
      for (const std::int32_t child : {node.left, node.left + 1}) {
        const auto c = static_cast<std::size_t>(child);
        parent[c] = static_cast<std::int32_t>(i);
        e.same_feature_above[c] = above;
        e.edge_feature[c] = node.feature;
        e.kept[c] = static_cast<double>(forest.cover[c]) / forest.cover[i] *
                    (above < 0 ? 1.0 : e.kept[static_cast<std::size_t>(above)]);
      }
    }
  }
  return e;
}

namespace {

// Two quadrature points at a time: one SSE register.
using Two = double __attribute__((vector_size(16)));

Two load(const double* p) {
  Two v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// L points: L / 2 vectors per node.
template <int L>
void add_with_lanes(const Forest& f, std::size_t tree, const float* row, const Quadrature& q,
                    const EdgeTables& edges, double scale, double* phi) {
  constexpr int kVectors = L / 2;
  struct Lanes {
    Two v[kVectors];
    Two& operator[](int i) { return v[i]; }
    const Two& operator[](int i) const { return v[i]; }
  };
  const auto first = static_cast<std::size_t>(f.roots[tree]);
  const std::size_t end = f.tree_end(tree);
  const std::size_t size = end - first;
  // Per node of the tree: the product at each point, the sum of leaf value x product below it,
  // and the part of that sum a deeper edge on the same feature counts instead; and 1 when the
  // row follows every split on the node's edge's feature down to it, else 0.
  thread_local std::vector<Lanes> product, sum, excluded;
  thread_local std::vector<double> follows;
  product.resize(size);
  sum.resize(size);
  // One more entry each, `size`, for "no edge above on the same feature": followed, and a sink
  // for the sums handed up (the walk takes no branch on it).
  excluded.assign(size + 1, Lanes{});
  follows.resize(size + 1);
  follows[size] = 1;
  const auto none = static_cast<std::int32_t>(f.nodes.size());
  Lanes y, w, cold_w;
  for (int v = 0; v < kVectors; ++v) {
    y[v] = load(q.points.data() + 2 * v);
    w[v] = load(q.weights.data() + 2 * v);
    cold_w[v] = load(q.cold_weights.data() + 2 * v);
    product[0][v] = Two{} + 1.0;
  }

  for (std::size_t i = first; i < end; ++i) {
    const Node& node = f.nodes[i];
    if (node.feature < 0) continue;
    const std::int32_t hot = f.child_taken(static_cast<std::int32_t>(i), row);
    const Lanes p = product[i - first];
    for (const std::int32_t child : {node.left, node.left + 1}) {
      const auto c = static_cast<std::size_t>(child);
      const double z = edges.kept[c];
      const std::int32_t above = edges.same_feature_above[c];
      // "None" is an edge with a share of 1, followed: a factor of 1.
      const double za = edges.kept[static_cast<std::size_t>(above < 0 ? none : above)];
      const double followed_above =
          follows[above < 0 ? size : static_cast<std::size_t>(above) - first];
      const double o = (child == hot) * followed_above;
      follows[c - first] = o;
      // The factor above on the same feature, za + (o_a - za) y, divided out first (the product
      // then stays within the bounds the explainer checked), then this edge's, z + (o - z) y.
      Lanes& out = product[c - first];
      for (int v = 0; v < kVectors; ++v) {
        out[v] = p[v] / (za + (followed_above - za) * y[v]) * (z + (o - z) * y[v]);
      }
    }
  }

  for (std::size_t i = end; i-- > first + 1;) {
    const Node& node = f.nodes[i];
    Lanes below;
    if (node.feature < 0) {
      for (int v = 0; v < kVectors; ++v) below[v] = node.value * product[i - first][v];
    } else {
      const std::size_t left = static_cast<std::size_t>(node.left) - first;
      for (int v = 0; v < kVectors; ++v) below[v] = sum[left][v] + sum[left + 1][v];
    }
    sum[i - first] = below;
    // (o - z) x the integral of (the sums whose last edge on the feature this is) / the factor:
    // followed, (1 - z) / (z + (1 - z) y); not, -1 / (1 - y).
    const double o = follows[i - first];
    const double z = edges.kept[i];
    Two terms{};
    for (int v = 0; v < kVectors; ++v) {
      const Two weight = o * (1 - z) * w[v] / (z + (1 - z) * y[v]) - (1 - o) * cold_w[v];
      terms += weight * (below[v] - excluded[i - first][v]);
    }
    phi[edges.edge_feature[i]] += scale * (terms[0] + terms[1]);
    const std::int32_t above = edges.same_feature_above[i];
    Lanes& to = excluded[above < 0 ? size : static_cast<std::size_t>(above) - first];
    for (int v = 0; v < kVectors; ++v) to[v] += below[v];
  }
  // A thread keeps its scratch for the next row, but not the memory of one huge tree.
  if (product.capacity() * sizeof(Lanes) > (std::size_t{1} << 20)) {
    std::vector<Lanes>().swap(product);
    std::vector<Lanes>().swap(sum);
    std::vector<Lanes>().swap(excluded);
    std::vector<double>().swap(follows);
  }
}

}  // namespace

void add_by_quadrature(const Forest& forest, std::size_t tree, const float* row,
                       const Quadrature& quadrature, const EdgeTables& edges, double scale,
                       double* phi) {
  switch (quadrature.lanes) {
    case 4:
      return add_with_lanes<4>(forest, tree, row, quadrature, edges, scale, phi);
    case 8:
      return add_with_lanes<8>(forest, tree, row, quadrature, edges, scale, phi);
    case 16:
      return add_with_lanes<16>(forest, tree, row, quadrature, edges, scale, phi);
    case 32:
      return add_with_lanes<32>(forest, tree, row, quadrature, edges, scale, phi);
    default:
      return add_with_lanes<64>(forest, tree, row, quadrature, edges, scale, phi);
  }
}

}  // namespace forklift::tree::shap
