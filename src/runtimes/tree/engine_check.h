// The proof a native forest must give before it serves in place of its model library: the same
// predictions as the library on rows that take every split both ways.
//
// Rows. For each internal node (an evenly spaced sample beyond kMaxCheckedNodes), a row that
// reaches it — the features on its path set inside the interval the path allows — three times: with
// the node's feature just below the threshold (left), at the threshold (right) and missing (the
// default way). The other features cycle through each feature's own thresholds. Forests with
// categorical or zero-as-missing splits get the cycling rows only. The caller adds its own rows
// (the version's self-test inputs).
//
// Paths. Every row goes through the batch path (as a request of many rows is served); one row in
// kOneRowStride, and every row the caller adds, also through the one-row path.
//
// Agreement. Each row must reach the same leaf in every tree as in the library (compared by the
// file's node ids), which no tolerance can blur. The margins (the sum of the leaves, before the
// objective's transform) must then agree within the rounding of a float32 sum, which is how
// XGBoost adds its leaves:
//     |native - library| <= 2 * (trees + 2) * 2^-24 * (|base_margin| + sum of |leaf|) + 1e-7
// per output, the leaves being those the row reaches; and predictions (after the transform)
// within 1e-5 relative + 1e-6 absolute, widened by the margin bound; a multi:softmax class must
// be the same unless the two best margins are within the bound.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "forklift/status.h"
#include "runtimes/tree/forest.h"

namespace forklift::tree {

// Internal nodes given their own rows; beyond it, an evenly spaced sample of them. The check
// costs at most 3 * min(nodes, this) + kMaxCyclingRows rows through both engines at every load
// (timed on eta in docs/explanation/native-engine.md).
constexpr std::size_t kMaxCheckedNodes = 1'024;
// Rows that cycle every feature through its thresholds (and missing), at most.
constexpr std::size_t kMaxCyclingRows = 1'024;

// What the library is asked for `n` rows of forest.num_features floats, row after row:
// predictions (outputs_per_row() values each), margins (one per output group), or the leaf each
// row reaches in each tree, as the model file numbers a tree's nodes (one per tree).
// (kContributions, each row's SHAP values, per output the features' then the bias: for the
// explanation tests and the benchmark, not the check.)
enum class LibraryOutput { kPredictions, kMargins, kLeaves, kContributions };
using LibraryPredict = std::function<Status(const float* rows, std::size_t n, LibraryOutput what,
                                            std::vector<float>& out)>;

struct EngineCheckReport {
  std::size_t rows = 0;           // rows compared
  std::size_t nodes_covered = 0;  // internal nodes given their own rows
  std::size_t nodes = 0;          // internal nodes in the forest
  double largest_margin_gap = 0;  // the largest |native - library| margin seen
  double largest_gap_share = 0;   // the largest difference as a share of its allowed bound
  bool per_node_rows = true;  // false: categorical or zero-as-missing splits (cycling rows only)
  std::string summary() const;
};

// The generated rows (see above), row-major, forest.num_features floats each.
std::vector<float> coverage_rows(const Forest& forest, std::size_t& nodes_covered);

// Compares `forest` with `library` on the generated rows and `extra_rows` (row-major, whole
// rows of forest.num_features). A FailedPrecondition naming the first row that disagrees, and by
// how much.
Result<EngineCheckReport> check_against_library(const Forest& forest, const LibraryPredict& library,
                                                const std::vector<float>& extra_rows);

}  // namespace forklift::tree
