// A tree ensemble in a flat, cache-friendly layout, evaluated by forklift itself (the `tree`
// runtime): no library call, no thread pool, no allocation per prediction. Read from XGBoost JSON
// models (xgboost_json.cc) and LightGBM text models (lightgbm_text.cc).
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

enum class Transform { kIdentity, kSigmoid, kExp };

struct Forest {
  std::vector<Node> nodes;          // every tree, one after another
  std::vector<std::int32_t> roots;  // index of each tree's root in `nodes`
  std::vector<CategorySplit> category_splits;
  std::vector<std::uint32_t> category_words;
  bool has_special_nodes = false;  // any kZeroMissing or kCategorical node
  std::size_t num_features = 0;
  double base_margin = 0;    // added to the sum of the leaves
  double leaf_scale = 1;     // the sum of the leaves is multiplied by it (LightGBM averaging)
  double sigmoid_scale = 1;  // kSigmoid: 1 / (1 + exp(-sigmoid_scale * margin))
  Transform transform = Transform::kIdentity;
  std::string objective;

  // The prediction for one row of `num_features` floats (NaN: missing).
  double predict(const float* row) const;

  // Makes `node` a categorical split over the category bitset `words` (stored here).
  void make_categorical(Node& node, std::span<const std::uint32_t> words, bool in_set_goes_left);

 private:
  template <bool kSpecial>
  double predict_with(const float* row) const;
};

// One tree as a model file describes it, before layout: node i's children are left[i] and
// right[i] (-1 for a leaf); `nodes[i]` holds everything else (its `left` is ignored).
struct RawTree {
  std::vector<Node> nodes;
  std::vector<std::int32_t> left;
  std::vector<std::int32_t> right;
  std::int32_t root = 0;
};

// Lays `tree` out breadth-first at the end of `forest`. Checks child indices and features.
Status append_tree(Forest& forest, const RawTree& tree, const std::string& where);

// Reads an XGBoost model saved as JSON (Booster.save_model("model.json"), XGBoost 1.x-2.x):
// gbtree boosters with numeric and categorical splits and one output; the objectives
// reg:squarederror, reg:linear, reg:pseudohubererror, reg:absoluteerror, binary:logistic,
// reg:logistic, binary:logitraw, count:poisson, reg:gamma, reg:tweedie. Anything else is refused
// by name.
Result<Forest> parse_xgboost_json(std::string_view json, const std::string& origin);

// Reads a LightGBM model saved as text (Booster.save_model("model.txt"), LightGBM 2.x-4.x):
// gbdt and rf boosters with numeric and categorical splits and one output; the objectives
// regression (l2, l1, huber, fair, quantile, mape), binary, cross_entropy, poisson, gamma,
// tweedie, lambdarank, rank_xendcg. Multiclass and linear trees are refused by name.
Result<Forest> parse_lightgbm_text(std::string_view text, const std::string& origin);

// Either format, told apart by the content (XGBoost JSON starts with '{').
Result<Forest> load_forest(const std::filesystem::path& path);

}  // namespace forklift::tree
