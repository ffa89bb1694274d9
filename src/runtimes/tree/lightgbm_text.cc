// LightGBM's text model format (Booster.save_model("model.txt")) into a Forest.
//
// The rules mapped here are LightGBM's own (include/LightGBM/tree.h, NumericalDecision and
// CategoricalDecision): a numeric node sends x <= threshold left; decision_type's bit 1 is the
// default direction and bits 2-3 the missing type: None (NaN is read as 0), Zero (0 and NaN are
// missing) or NaN (NaN is missing). A categorical node (bit 0) sends a category in its bitset
// left, and NaN, negative and unknown categories right.
#include <charconv>
#include <cmath>
#include <map>

#include "runtimes/tree/forest.h"
#include "runtimes/tree/number_cast.h"

namespace forklift::tree {
namespace {

// The "key=value" lines of one section.
using Section = std::map<std::string, std::string, std::less<>>;

template <class T>
Result<std::vector<T>> parse_list(const Section& s, const char* key, const std::string& where) {
  std::vector<T> out;
  const auto it = s.find(key);
  if (it == s.end()) return out;
  const std::string& text = it->second;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    if (i >= text.size()) break;
    std::size_t end = text.find(' ', i);
    if (end == std::string::npos) end = text.size();
    T value{};
    if constexpr (std::is_floating_point_v<T>) {
      // from_chars does not read "inf"/"nan" the way LightGBM writes them everywhere; strtod does.
      const std::string token = text.substr(i, end - i);
      char* stop = nullptr;
      value = static_cast<T>(std::strtod(token.c_str(), &stop));
      if (stop != token.c_str() + token.size()) {
        return FailedPrecondition(where + ": '" + key + "' holds something that is not a number");
      }
    } else {
      const auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + end, value);
      if (ec != std::errc() || ptr != text.data() + end) {
        return FailedPrecondition(where + ": '" + key + "' holds something that is not an integer");
      }
    }
    out.push_back(value);
    i = end;
  }
  return out;
}

std::string value_of(const Section& s, std::string_view key) {
  const auto it = s.find(key);
  return it == s.end() ? std::string() : it->second;
}

// For float inputs, x <= t  <=>  x < (the smallest float above t, rounded down to a float).
float strict_bound_for_at_most(double t) {
  float f =
      to_float_saturating(t);  // beyond float's range: an infinity, and the bound below still holds
  if (static_cast<double>(f) > t) f = std::nextafter(f, -INFINITY);
  return std::nextafter(f, INFINITY);
}

Status set_lightgbm_objective(Forest& forest, const Section& header, const std::string& origin) {
  std::string objective = value_of(header, "objective");
  if (objective.empty() && header.count("sigmoid")) {
    objective = "binary sigmoid:" + value_of(header, "sigmoid");  // models before LightGBM 2.0
  }
  forest.objective = objective;
  const std::string name = objective.substr(0, objective.find(' '));
  const auto refuse = [&](const std::string& why) {
    return FailedPrecondition(origin + ": objective '" + objective + "' " + why);
  };
  if (objective.find("sqrt") != std::string::npos) {
    return refuse("(reg_sqrt) is not supported by the tree runtime");
  }
  if (name == "regression" || name == "regression_l2" || name == "regression_l1" ||
      name == "huber" || name == "fair" || name == "quantile" || name == "mape" ||
      name == "lambdarank" || name == "rank_xendcg" || name == "custom" || name.empty()) {
    forest.transform = Transform::kIdentity;
  } else if (name == "binary") {
    forest.transform = Transform::kSigmoid;
    const auto at = objective.find("sigmoid:");
    if (at != std::string::npos)
      forest.sigmoid_scale = std::strtod(objective.c_str() + at + 8, nullptr);
    if (!(forest.sigmoid_scale > 0)) return refuse("has a bad sigmoid scale");
  } else if (name == "cross_entropy" || name == "xentropy") {
    forest.transform = Transform::kSigmoid;
  } else if (name == "poisson" || name == "gamma" || name == "tweedie") {
    forest.transform = Transform::kExp;
  } else {
    return refuse("is not supported by the tree runtime");
  }
  return Status::Ok();
}

Status add_tree(Forest& forest, const Section& s, const std::string& where) {
  const auto num_leaves_text = value_of(s, "num_leaves");
  int num_leaves = 0;
  std::from_chars(num_leaves_text.data(), num_leaves_text.data() + num_leaves_text.size(),
                  num_leaves);
  if (num_leaves < 1) return FailedPrecondition(where + ": no num_leaves");
  if (value_of(s, "is_linear") == "1") {
    return FailedPrecondition(where + " is a linear tree, not supported by the tree runtime");
  }
  auto leaf_value = parse_list<double>(s, "leaf_value", where);
  if (!leaf_value.ok()) return leaf_value.status();
  if (leaf_value->size() != static_cast<std::size_t>(num_leaves)) {
    return FailedPrecondition(where + ": leaf_value has " + std::to_string(leaf_value->size()) +
                              " values for " + std::to_string(num_leaves) + " leaves");
  }
  const std::size_t internal = static_cast<std::size_t>(num_leaves) - 1;
  auto feature = parse_list<std::int32_t>(s, "split_feature", where);
  auto threshold = parse_list<double>(s, "threshold", where);
  auto decision = parse_list<std::int32_t>(s, "decision_type", where);
  auto left = parse_list<std::int32_t>(s, "left_child", where);
  auto right = parse_list<std::int32_t>(s, "right_child", where);
  if (!feature.ok()) return feature.status();
  if (!threshold.ok()) return threshold.status();
  if (!decision.ok()) return decision.status();
  if (!left.ok()) return left.status();
  if (!right.ok()) return right.status();
  if (decision->empty()) decision->assign(internal, 0);  // files before LightGBM 2.0
  if (feature->size() != internal || threshold->size() != internal ||
      decision->size() != internal || left->size() != internal || right->size() != internal) {
    return FailedPrecondition(where + " has arrays of different lengths");
  }
  auto cat_boundaries = parse_list<std::int64_t>(s, "cat_boundaries", where);
  auto cat_threshold = parse_list<std::uint32_t>(s, "cat_threshold", where);
  if (!cat_boundaries.ok()) return cat_boundaries.status();
  if (!cat_threshold.ok()) return cat_threshold.status();

  // Internal nodes keep their numbers 0..internal-1; leaf j (written ~j) becomes internal + j.
  RawTree raw;
  raw.nodes.resize(internal + leaf_value->size());
  raw.left.assign(raw.nodes.size(), -1);
  raw.right.assign(raw.nodes.size(), -1);
  raw.root = 0;  // the first internal node, or the only leaf
  const auto child = [&](std::int32_t c) -> std::int32_t {
    if (c >= 0) return c;
    const std::int64_t leaf = -static_cast<std::int64_t>(c) - 1;
    return static_cast<std::int32_t>(internal + static_cast<std::size_t>(leaf));
  };
  for (std::size_t j = 0; j < leaf_value->size(); ++j) {
    raw.nodes[internal + j] =
        Node{to_float_saturating((*leaf_value)[j]), -1, -1, 0, NodeKind::kNumeric};
  }
  for (std::size_t i = 0; i < internal; ++i) {
    const std::int32_t d = (*decision)[i];
    Node node{0, (*feature)[i], 0, static_cast<std::uint8_t>((d >> 1) & 1), NodeKind::kNumeric};
    raw.left[i] = child((*left)[i]);
    raw.right[i] = child((*right)[i]);
    const int missing = (d >> 2) & 3;
    if (d & 1) {
      // threshold is the index of this node's bitset in cat_boundaries.
      const std::int64_t k = checked_number_as<std::int64_t>((*threshold)[i]).value_or(-1);
      if (k < 0 || static_cast<std::size_t>(k) + 1 >= cat_boundaries->size()) {
        return FailedPrecondition(where + ": categorical node " + std::to_string(i) +
                                  " has no category set");
      }
      const std::int64_t begin = (*cat_boundaries)[static_cast<std::size_t>(k)];
      const std::int64_t end = (*cat_boundaries)[static_cast<std::size_t>(k) + 1];
      if (begin < 0 || end < begin || static_cast<std::size_t>(end) > cat_threshold->size()) {
        return FailedPrecondition(where + ": cat_boundaries out of range");
      }
      forest.make_categorical(
          node,
          std::span<const std::uint32_t>(*cat_threshold)
              .subspan(static_cast<std::size_t>(begin), static_cast<std::size_t>(end - begin)),
          /*in_set_goes_left=*/true);
      node.default_left = 0;  // NaN goes right
    } else {
      const double t = (*threshold)[i];
      node.value = strict_bound_for_at_most(t);
      if (missing == 0) {
        node.default_left = 0.0 <= t;  // NaN is read as 0
      } else if (missing == 1) {
        node.kind = NodeKind::kZeroMissing;
      }
    }
    raw.nodes[i] = node;
  }
  return append_tree(forest, raw, where);
}

}  // namespace

Result<Forest> parse_lightgbm_text(std::string_view text, const std::string& origin) {
  Forest forest;
  Section header;
  Section tree;
  std::string tree_name;
  bool in_trees = false;
  bool ended = false;
  std::size_t trees = 0;
  const auto finish_tree = [&]() -> Status {
    if (tree_name.empty()) return Status::Ok();
    Status s = add_tree(forest, tree, origin + ": " + tree_name);
    tree.clear();
    tree_name.clear();
    ++trees;
    return s;
  };
  std::size_t pos = 0;
  bool first = true;
  while (pos < text.size() && !ended) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (first) {
      first = false;
      if (line != "tree" && line != "gbdt") {
        // Not quoted: the file may be anything (an error must not echo what it holds).
        return FailedPrecondition(
            origin + ": not a LightGBM text model (its first line is neither 'tree' nor 'gbdt')");
      }
      continue;
    }
    if (line == "end of trees") {
      ended = true;
      break;
    }
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      if (line == "average_output") header["average_output"] = "1";  // random forest mode
      continue;
    }
    const std::string key(line.substr(0, eq));
    std::string value(line.substr(eq + 1));
    if (key == "Tree") {
      if (!in_trees) {
        in_trees = true;
        auto max_feature = header.find("max_feature_idx");
        if (max_feature == header.end()) return FailedPrecondition(origin + ": no max_feature_idx");
        forest.num_features = std::strtoull(max_feature->second.c_str(), nullptr, 10) + 1;
        const std::string num_class = value_of(header, "num_class");
        if (!num_class.empty() && num_class != "1") {
          return FailedPrecondition(origin + ": models with several outputs (num_class " +
                                    num_class + ") are not supported by the tree runtime yet");
        }
        if (Status s = set_lightgbm_objective(forest, header, origin); !s.ok()) return s;
      }
      if (Status s = finish_tree(); !s.ok()) return s;
      tree_name = "tree " + value;
      continue;
    }
    if (in_trees) {
      tree[key] = std::move(value);
    } else {
      header[key] = std::move(value);
    }
  }
  if (Status s = finish_tree(); !s.ok()) return s;
  if (trees == 0) return FailedPrecondition(origin + ": the model has no trees");
  if (header.count("average_output")) forest.leaf_scale = 1.0 / static_cast<double>(trees);
  forest.prepare();
  return forest;
}

}  // namespace forklift::tree
