// A tree ensemble in a flat, cache-friendly layout, evaluated by forklift itself (the `tree`
// runtime): no library call, no thread pool, no allocation per prediction.
//
// Each tree's nodes are renumbered breadth-first so that an internal node's two children sit
// next to each other: a node stores its feature, threshold (or leaf value) and the index of its
// left child; the right child is the next node. A row walks each tree with one comparison per
// level: `x < threshold` goes left, a missing value (NaN) goes the node's default way — the
// same rule XGBoost applies.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/status.h"

namespace forklift::tree {

struct Node {
  float value;           // threshold for a split; the leaf's value for a leaf
  std::int32_t feature;  // < 0: a leaf
  std::int32_t left;     // index of the left child (the right one is left + 1)
  std::uint8_t default_left;
};

enum class Transform { kIdentity, kSigmoid, kExp };

struct Forest {
  std::vector<Node> nodes;          // every tree, one after another
  std::vector<std::int32_t> roots;  // index of each tree's root in `nodes`
  std::size_t num_features = 0;
  double base_margin = 0;  // added to the sum of the leaves
  Transform transform = Transform::kIdentity;
  std::string objective;

  // The prediction for one row of `num_features` floats (NaN: missing).
  double predict(const float* row) const;
};

// Reads an XGBoost model saved as JSON (Booster.save_model("model.json"), XGBoost 1.x-2.x):
// gbtree boosters with numeric splits and one output; the objectives reg:squarederror,
// reg:linear, reg:pseudohubererror, reg:absoluteerror, binary:logistic, reg:logistic,
// binary:logitraw, count:poisson, reg:gamma, reg:tweedie. Anything else is refused by name.
Result<Forest> parse_xgboost_json(std::string_view json, const std::string& origin);
Result<Forest> load_xgboost_json(const std::filesystem::path& path);

}  // namespace forklift::tree
