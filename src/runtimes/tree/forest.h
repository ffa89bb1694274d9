// A tree ensemble in a flat, cache-friendly layout, evaluated by forklift itself (the native
// engine of the `xgboost` runtime and the whole of the `tree` runtime): no library call, no
// thread pool, no allocation per prediction. Read from XGBoost JSON models (xgboost_json.cc) and
// LightGBM text models (lightgbm_text.cc). predict() prefers the complete-tree layout (below) and
// its vector kernels (complete_rows_simd.h); this node walk is the fallback.
//
// Each tree's nodes are renumbered breadth-first so that an internal node's two children sit
// next to each other: a node stores its feature, threshold (or leaf value) and the index of its
// left child; the right child is the next node. A row walks each tree with one comparison per
// level: `x < threshold` goes left, a missing value (NaN) goes the node's default way.
// The two libraries' other rules are mapped onto that one at load time where they can be (a
// LightGBM `x <= t` becomes `x < the next float above t`; "missing means zero" becomes a default
// direction); the rest are rare node kinds with their own, slower step.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/status.h"

namespace forklift::tree {

enum class NodeKind : std::uint8_t {
  kNumeric,      // x < value goes left; NaN goes the default way
  kZeroMissing,  // as kNumeric, and |x| <= 1e-35 is missing too (LightGBM's missing_type Zero)
  kCategorical,  // membership of (int) x in a category set (see CategorySplit)
};

struct Node {
  float value;           // threshold; a leaf's value; for kCategorical, the CategorySplit index
  std::int32_t feature;  // < 0: a leaf
  std::int32_t left;     // index of the left child (the right one is left + 1)
  std::uint8_t default_left;
  NodeKind kind;
};

// A categorical split: category c (a non-negative integer; x is truncated) is "in the set" when
// bit c of the words [first_word, first_word + words) is set. XGBoost sends the set right,
// LightGBM left; a negative category or one beyond the words is not in the set.
struct CategorySplit {
  std::uint32_t first_word = 0;
  std::uint32_t words = 0;
  bool in_set_goes_left = false;
};

// How a row's margins (one per output group) become its prediction.
enum class Transform {
  kIdentity,  // each margin as it is
  kSigmoid,   // 1 / (1 + exp(-sigmoid_scale * margin)), each
  kExp,       // exp(margin), each
  kSoftmax,   // the groups' probabilities (XGBoost multi:softprob)
  kArgmax,    // one value: the index of the largest margin (XGBoost multi:softmax)
};

struct Forest {
  std::vector<Node> nodes;          // every tree, one after another
  std::vector<std::int32_t> roots;  // index of each tree's root in `nodes`
  // One past tree `t`'s last node: a tree's nodes are contiguous, from roots[t].
  std::size_t tree_end(std::size_t t) const {
    return t + 1 < roots.size() ? static_cast<std::size_t>(roots[t + 1]) : nodes.size();
  }
  // Each tree's output group (a class of a multi-class model, a target of a multi-output one):
  // one entry per root, all 0 when num_groups is 1.
  std::vector<std::int32_t> tree_group;
  std::size_t num_groups = 1;
  // Each node's index in its tree as the model file numbers it (the engine check compares the
  // leaves each row reaches with the library's).
  std::vector<std::int32_t> source_id;
  // Each node's cover, the hessian sum of the training rows that reached it (XGBoost's
  // sum_hessian), which explanations need (tree_shap.h); empty when the file lacks any.
  std::vector<float> cover;
  std::vector<CategorySplit> category_splits;
  std::vector<std::uint32_t> category_words;
  bool has_special_nodes = false;  // any kZeroMissing or kCategorical node
  std::size_t num_features = 0;
  double base_margin = 0;    // added to the sum of the leaves (of every group)
  double leaf_scale = 1;     // the sum of the leaves is multiplied by it (LightGBM averaging)
  double sigmoid_scale = 1;  // kSigmoid: 1 / (1 + exp(-sigmoid_scale * margin))
  Transform transform = Transform::kIdentity;
  std::string objective;

  // Values per row of a prediction: num_groups, or 1 for kArgmax.
  std::size_t outputs_per_row() const { return transform == Transform::kArgmax ? 1 : num_groups; }

  // The predictions for `n` rows of `num_features` floats each (NaN: missing), row after row:
  // outputs_per_row() values each in `out`; and, when `margins` is given, the margins before the
  // transform there (num_groups values a row: the engine check).
  void predict(const float* rows, std::size_t n, double* out, double* margins = nullptr) const;

  // The first (for one group, the only) prediction for one row.
  double predict(const float* row) const;

  // One row's margins, num_groups values: base_margin + leaf_scale * the sum of its leaves.
  void margins(const float* row, double* out) const;

  // For one row (for the engine check, engine_check.h): the file's id of the leaf it reaches in
  // each tree, `ids` (one per root), and per group |base_margin| + the sum of |leaf| over those
  // leaves, `magnitudes` (num_groups values), what bounds the rounding error of their sum.
  void leaves_reached(const float* row, std::int32_t* ids, double* magnitudes) const;

  // The child of internal node `n` that `row` goes to.
  std::int32_t child_taken(std::int32_t n, const float* row) const;

  // `margins` (num_groups values) into outputs_per_row() predictions.
  void apply_transform(const double* margins, double* out) const;

  // Makes `node` a categorical split over the category bitset `words` (stored here).
  void make_categorical(Node& node, std::span<const std::uint32_t> words, bool in_set_goes_left);

  // Builds the complete-tree layout (below) when the forest suits it; the parsers call it last.
  void prepare();

  // Which evaluation predict() uses: "complete trees" or "node walk" (for the benchmark and
  // the tests).
  std::string_view layout() const { return complete_.depth > 0 ? "complete trees" : "node walk"; }

 private:
  // The layout predict() prefers. Every tree padded to the forest's depth D as a complete binary
  // tree: node i's children are 2i+1 and 2i+2, so a step needs no child index, and a row takes
  // exactly D steps in every tree, without a branch. A leaf above depth D is repeated into every
  // slot below it. Used when there is no categorical or zero-as-missing node and the padding
  // stays small (kMaxCompleteDepth, and at most kMaxPadding times the real nodes).
  struct CompleteTrees {
    int depth = 0;              // 0: not built
    std::vector<float> leaves;  // per tree, 2^D
    // Each tree's 2^D - 1 nodes, `stride` apart (room for the vector kernels to read eight past
    // any level's first node): thresholds, and features with bit 31 set where missing goes left.
    std::vector<float> thresholds;
    std::vector<std::int32_t> features;
    std::size_t stride = 0;
    // Per tree when depth <= kMaxAvx512OneRowDepth (complete_rows_simd.h): bit i + 1 is set where
    // node i sends missing values left, for the AVX-512 one-row kernel.
    std::vector<std::uint64_t> missing_left_bits;
    // The top levels of each run of eight trees, interleaved for the one-row kernel.
    std::vector<float> top_thresholds;
    std::vector<std::int32_t> top_features;
    int top_levels = 0;
  };
  CompleteTrees complete_;

  // Calls visit(t, leaf) for every tree t with the leaf `row` reaches in it, kLanes trees walked
  // at a time.
  template <bool kSpecial, typename Visit>
  void for_each_leaf(const float* row, Visit&& visit) const;
  template <bool kSpecial>
  void sum_by_walking(const float* row, double* sums) const;
  void sum_complete(const float* row, double* sums) const;
  void sum_complete_rows(const float* rows, std::size_t n, double* sums) const;
  void add_leaves(const float* row, double* sums) const;
  double finish_one(double sum) const;

  template <bool kSpecial>
  const Node* walk_step(const Node* n, const float* row) const;
  template <bool kSpecial>
  const Node* leaf_of(std::int32_t root, const float* row) const;
};

// One tree as a model file describes it, before layout: node i's children are left[i] and
// right[i] (-1 for a leaf); `nodes[i]` holds everything else (its `left` is ignored).
struct RawTree {
  std::vector<Node> nodes;
  std::vector<std::int32_t> left;
  std::vector<std::int32_t> right;
  std::vector<float> cover;  // per node, or empty when the file has none
  std::int32_t root = 0;
};

// Lays `tree` out breadth-first at the end of `forest`, as a tree of output `group`. Checks child
// indices and features.
Status append_tree(Forest& forest, const RawTree& tree, const std::string& where,
                   std::int32_t group = 0);

// Reads an XGBoost model saved as JSON (Booster.save_model("model.json"), XGBoost 1.x-2.x):
// gbtree boosters with numeric and categorical splits, one output or several (num_class: one
// tree per class and round; num_target: one tree per target, `tree_info` saying whose); the
// objectives reg:squarederror, reg:linear, reg:pseudohubererror, reg:absoluteerror,
// binary:logistic, reg:logistic, binary:logitraw, count:poisson, reg:gamma, reg:tweedie,
// multi:softprob and multi:softmax. Anything else (vector leaves included) is refused by name.
Result<Forest> parse_xgboost_json(std::string_view json, const std::string& origin);

// Reads a LightGBM model saved as text (Booster.save_model("model.txt"), LightGBM 2.x-4.x):
// gbdt and rf boosters with numeric and categorical splits and one output; the objectives
// regression (l2, l1, huber, fair, quantile, mape), binary, cross_entropy, poisson, gamma,
// tweedie, lambdarank, rank_xendcg. Multiclass and linear trees are refused by name.
Result<Forest> parse_lightgbm_text(std::string_view text, const std::string& origin);

// A model file's bytes (the version loader has bounded its size).
Result<std::string> read_model_text(const std::filesystem::path& path);

// Either format, told apart by the content (XGBoost JSON starts with '{').
Result<Forest> load_forest(const std::filesystem::path& path);

}  // namespace forklift::tree
