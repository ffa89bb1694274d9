#include "runtimes/tree/engine_check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace forklift::tree {
namespace {

// The generated rows stay under 32 MiB of floats, whatever the number of features.
constexpr std::size_t kMaxCheckFloats = std::size_t{1} << 23;
constexpr std::size_t kOneRowStride = 8;
constexpr std::size_t kChunkRows = 4096;
constexpr std::size_t kMaxPathDepth = 64;
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Each feature's thresholds, just below and at each, and missing: the values worth trying.
std::vector<std::vector<float>> candidates(const Forest& forest) {
  std::vector<std::vector<float>> values(forest.num_features);
  for (const Node& n : forest.nodes) {
    if (n.feature < 0) continue;
    auto& v = values[static_cast<std::size_t>(n.feature)];
    if (n.kind == NodeKind::kCategorical) {
      // A categorical node's value is the index of its set: try the first categories.
      for (int c = 0; c < 64; ++c) v.push_back(static_cast<float>(c));
      v.push_back(-1.0f);
      continue;
    }
    v.push_back(n.value);
    v.push_back(std::nextafter(n.value, -kInf));
    if (n.kind == NodeKind::kZeroMissing) {
      v.push_back(0.0f);
      v.push_back(1e-36f);
    }
  }
  for (auto& v : values) {
    std::erase_if(v, [](float x) { return std::isnan(x); });  // sorted below; NaN is added last
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    v.push_back(kNaN);
  }
  return values;
}

// The row numbered `r` of the cycling rows: feature f takes its candidates in turn, from its
// own offset, so the features' values mix differently from row to row.
void cycling_row(const std::vector<std::vector<float>>& values, std::size_t r, float* row) {
  for (std::size_t f = 0; f < values.size(); ++f) {
    const std::size_t offset = (f * 2654435761u) % values[f].size();
    row[f] = values[f][(r + offset) % values[f].size()];
  }
}

struct Bound {
  std::int32_t feature;
  float lo;  // x >= lo
  float hi;  // x < hi
};

// The intervals on the path from the root down to node `n`, or false if no row reaches it (or it
// lies deeper than kMaxPathDepth).
bool path_bounds(const Forest& forest, const std::vector<std::int32_t>& parent, std::int32_t n,
                 std::vector<Bound>& bounds) {
  bounds.clear();
  std::size_t depth = 0;
  for (std::int32_t child = n, up = parent[static_cast<std::size_t>(n)]; up >= 0;
       child = up, up = parent[static_cast<std::size_t>(up)]) {
    // Deeper nodes get no rows of their own: a walk per node must not cost the depth of a
    // hostile chain of nodes (the cycling rows still reach them).
    if (++depth > kMaxPathDepth) return false;
    const Node& a = forest.nodes[static_cast<std::size_t>(up)];
    auto it = std::find_if(bounds.begin(), bounds.end(),
                           [&](const Bound& b) { return b.feature == a.feature; });
    if (it == bounds.end()) it = bounds.insert(bounds.end(), Bound{a.feature, -kInf, kInf});
    if (child == a.left) {
      it->hi = std::min(it->hi, a.value);
    } else {
      it->lo = std::max(it->lo, a.value);
    }
  }
  return std::all_of(bounds.begin(), bounds.end(), [](const Bound& b) { return b.lo < b.hi; });
}

bool inside(float x, const Bound* b) {
  return b == nullptr || (x >= b->lo && x < b->hi);
}

double group_trees(const Forest& forest, std::size_t g) {
  if (forest.num_groups == 1) return static_cast<double>(forest.roots.size());
  return static_cast<double>(
      std::count(forest.tree_group.begin(), forest.tree_group.end(), static_cast<std::int32_t>(g)));
}

std::string number(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", x);
  return text;
}

std::string short_number(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2g", x);
  return text;
}

}  // namespace

std::string EngineCheckReport::summary() const {
  const std::string gap = "; largest margin difference " + short_number(largest_margin_gap) + ", " +
                          short_number(100 * largest_gap_share) + "% of its allowed bound";
  if (!per_node_rows) {
    return std::to_string(rows) + " rows cycling every feature through its thresholds (the " +
           "model's categorical or zero-as-missing splits get no rows of their own)" + gap;
  }
  return std::to_string(rows) + " rows, every split of " + std::to_string(nodes_covered) + " of " +
         std::to_string(nodes) + " internal nodes taken both ways and missing" + gap;
}

std::vector<float> coverage_rows(const Forest& forest, std::size_t& nodes_covered) {
  nodes_covered = 0;
  if (forest.num_features == 0) return {};
  const std::size_t cols = forest.num_features;
  const auto values = candidates(forest);
  std::size_t cycling = 1;
  for (const auto& v : values) cycling = std::max(cycling, v.size());
  const std::size_t budget_rows = kMaxCheckFloats / cols;
  cycling = std::min({cycling, kMaxCyclingRows, budget_rows / 4 + 1});
  std::vector<float> rows(cycling * forest.num_features);
  for (std::size_t r = 0; r < cycling; ++r) cycling_row(values, r, rows.data() + r * cols);
  if (forest.has_special_nodes) return rows;

  std::vector<std::int32_t> parent(forest.nodes.size(), -1);
  std::vector<std::int32_t> internal;
  for (std::size_t i = 0; i < forest.nodes.size(); ++i) {
    const Node& n = forest.nodes[i];
    if (n.feature < 0) continue;
    internal.push_back(static_cast<std::int32_t>(i));
    parent[static_cast<std::size_t>(n.left)] = static_cast<std::int32_t>(i);
    parent[static_cast<std::size_t>(n.left) + 1] = static_cast<std::int32_t>(i);
  }
  const std::size_t room = (budget_rows > cycling ? budget_rows - cycling : 0) / 3;
  const std::size_t limit = std::min(kMaxCheckedNodes, room);
  const std::size_t stride =
      limit == 0 ? internal.size() + 1 : (internal.size() + limit - 1) / limit;
  std::vector<Bound> bounds;
  std::vector<float> row(cols);
  for (std::size_t k = 0; k < internal.size(); k += std::max<std::size_t>(stride, 1)) {
    const std::int32_t n = internal[k];
    if (!path_bounds(forest, parent, n, bounds)) continue;  // no row reaches it
    cycling_row(values, k, row.data());
    for (const Bound& b : bounds) {
      float& x = row[static_cast<std::size_t>(b.feature)];
      if (!inside(x, &b)) x = b.lo > -kInf ? b.lo : std::nextafter(b.hi, -kInf);
    }
    const Node& node = forest.nodes[static_cast<std::size_t>(n)];
    const auto own = std::find_if(bounds.begin(), bounds.end(),
                                  [&](const Bound& b) { return b.feature == node.feature; });
    const Bound* own_bound = own == bounds.end() ? nullptr : &*own;
    const float tries[] = {std::nextafter(node.value, -kInf), node.value, kNaN};
    for (float x : tries) {
      if (!std::isnan(x) && !inside(x, own_bound)) continue;
      row[static_cast<std::size_t>(node.feature)] = x;
      rows.insert(rows.end(), row.begin(), row.end());
    }
    ++nodes_covered;
  }
  return rows;
}

Result<EngineCheckReport> check_against_library(const Forest& forest, const LibraryPredict& library,
                                                const std::vector<float>& extra_rows) {
  EngineCheckReport report;
  for (const Node& n : forest.nodes) report.nodes += n.feature >= 0 ? 1 : 0;
  std::vector<float> rows = coverage_rows(forest, report.nodes_covered);
  report.per_node_rows = !forest.has_special_nodes;
  rows.insert(rows.end(), extra_rows.begin(), extra_rows.end());
  const std::size_t cols = forest.num_features, groups = forest.num_groups;
  const std::size_t per_row = forest.outputs_per_row(), trees = forest.roots.size();
  if (cols == 0) return FailedPrecondition("the model has no features");
  const std::size_t total = rows.size() / cols;
  // Chunks whose answers (a value per tree, output or feature) stay within the rows' budget.
  const std::size_t chunk_rows =
      std::clamp<std::size_t>(kMaxCheckFloats / std::max({cols, groups, trees}), 1, kChunkRows);

  std::vector<double> group_trees_of(groups);
  for (std::size_t g = 0; g < groups; ++g) group_trees_of[g] = group_trees(forest, g);
  const std::size_t first_extra = total - extra_rows.size() / cols;
  std::vector<float> lib_margins, lib_predictions, lib_leaves;
  std::vector<double> magnitudes(groups), predictions, margins, one_row(groups), bounds(groups);
  std::vector<std::int32_t> leaves(trees);
  for (std::size_t first = 0; first < total; first += chunk_rows) {
    const std::size_t n = std::min(chunk_rows, total - first);
    const float* chunk = rows.data() + first * cols;
    if (Status s = library(chunk, n, LibraryOutput::kLeaves, lib_leaves); !s.ok()) return s;
    if (Status s = library(chunk, n, LibraryOutput::kMargins, lib_margins); !s.ok()) return s;
    if (Status s = library(chunk, n, LibraryOutput::kPredictions, lib_predictions); !s.ok()) {
      return s;
    }
    if (lib_leaves.size() != n * trees || lib_margins.size() != n * groups ||
        lib_predictions.size() != n * per_row) {
      return FailedPrecondition("the library gives " + std::to_string(lib_predictions.size()) +
                                " values for " + std::to_string(n) + " rows where the native " +
                                "engine gives " + std::to_string(per_row) + " per row (or " +
                                "another number of trees or outputs)");
    }
    predictions.resize(n * per_row);
    margins.resize(n * groups);
    forest.predict(chunk, n, predictions.data(), margins.data());  // the batch path, as served
    for (std::size_t r = 0; r < n; ++r) {
      const float* row = chunk + r * cols;
      const auto where = [&] {
        return "row " + std::to_string(first + r) + " of " + std::to_string(total);
      };
      forest.leaves_reached(row, leaves.data(), magnitudes.data());
      for (std::size_t t = 0; t < trees; ++t) {
        const float want = lib_leaves[r * trees + t];
        if (static_cast<float>(leaves[t]) != want) {
          return FailedPrecondition(where() + ", tree " + std::to_string(t) + ": leaf " +
                                    std::to_string(leaves[t]) + " against the library's " +
                                    number(want));
        }
      }
      const double* margin = margins.data() + r * groups;
      const std::size_t at = first + r;
      const bool also_one_row = at % kOneRowStride == 0 || at >= first_extra;
      if (also_one_row) forest.margins(row, one_row.data());  // the one-row path
      for (std::size_t g = 0; g < groups; ++g) {
        bounds[g] = 2.0 * (group_trees_of[g] + 2) * std::ldexp(magnitudes[g], -24) + 1e-7;
        const double want = lib_margins[r * groups + g];
        for (const double got : {margin[g], also_one_row ? one_row[g] : margin[g]}) {
          const double gap = std::abs(got - want);
          if (!(gap <= bounds[g])) {
            return FailedPrecondition(where() + ", output " + std::to_string(g) + ": margin " +
                                      number(got) + " against the library's " + number(want) +
                                      " (allowed difference " + number(bounds[g]) + ")");
          }
          report.largest_margin_gap = std::max(report.largest_margin_gap, gap);
          report.largest_gap_share = std::max(report.largest_gap_share, gap / bounds[g]);
        }
      }
      if (forest.transform == Transform::kArgmax) {
        const auto got = static_cast<std::size_t>(predictions[r]);
        const auto want = static_cast<std::size_t>(lib_predictions[r]);
        if (got != want && !(got < groups && want < groups &&
                             std::abs(margin[got] - margin[want]) <= bounds[got] + bounds[want])) {
          return FailedPrecondition(where() + ": class " + std::to_string(got) +
                                    " against the library's " + std::to_string(want));
        }
        continue;
      }
      for (std::size_t o = 0; o < per_row; ++o) {
        const double want = lib_predictions[r * per_row + o], got = predictions[r * per_row + o];
        const double allowed =
            1e-6 + 1e-5 * std::abs(want) + bounds[o] * std::max(1.0, std::abs(want));
        if (!(std::abs(got - want) <= allowed) && !(std::isnan(got) && std::isnan(want))) {
          return FailedPrecondition(where() + ", output " + std::to_string(o) + ": prediction " +
                                    number(got) + " against the library's " + number(want) +
                                    " (allowed difference " + number(allowed) + ")");
        }
      }
    }
  }
  report.rows = total;
  return report;
}

}  // namespace forklift::tree
