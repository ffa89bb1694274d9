#include "runtimes/tree/forest.h"

#include <simdjson.h>

#include <cmath>
#include <deque>
#include <fstream>
#include <sstream>

namespace forklift::tree {

double Forest::predict(const float* row) const {
  double sum = base_margin;
  const Node* all = nodes.data();
  // One step of a walk: `x < threshold` goes left; NaN compares false, so a missing value
  // follows the node's default direction instead.
  const auto step = [&](const Node* n) {
    const float x = row[n->feature];
    const bool left = std::isnan(x) ? n->default_left != 0 : x < n->value;
    return all + n->left + (left ? 0 : 1);
  };
  // Trees are walked sixteen at a time, interleaved: the chains of dependent loads overlap
  // instead of waiting for each other (measured on eta, 400 trees: one row in 4.0 µs instead of
  // 7.1 µs one tree after another; 8 lanes gave 4.6 µs).
  constexpr std::size_t kLanes = 16;
  const std::size_t trees = roots.size();
  std::size_t t = 0;
  for (; t + kLanes <= trees; t += kLanes) {
    const Node* at[kLanes];
    for (std::size_t i = 0; i < kLanes; ++i) at[i] = all + roots[t + i];
    for (bool moving = true; moving;) {
      moving = false;
      for (std::size_t i = 0; i < kLanes; ++i) {
        if (at[i]->feature >= 0) {
          at[i] = step(at[i]);
          moving = true;
        }
      }
    }
    for (std::size_t i = 0; i < kLanes; ++i) sum += at[i]->value;
  }
  for (; t < trees; ++t) {
    const Node* n = all + roots[t];
    while (n->feature >= 0) n = step(n);
    sum += n->value;
  }
  switch (transform) {
    case Transform::kIdentity:
      return sum;
    case Transform::kSigmoid:
      return 1.0 / (1.0 + std::exp(-sum));
    case Transform::kExp:
      return std::exp(sum);
  }
  return sum;
}

namespace {

Status bad(const std::string& origin, const std::string& what) {
  return FailedPrecondition(origin + ": " + what);
}

// Numbers in XGBoost's JSON are sometimes strings ("5E-1").
Result<double> number(simdjson::dom::element e) {
  double d = 0;
  if (!e.get_double().get(d)) return d;
  std::int64_t i = 0;
  if (!e.get_int64().get(i)) return static_cast<double>(i);
  std::string_view s;
  if (!e.get_string().get(s)) {
    try {
      return std::stod(std::string(s));
    } catch (const std::exception&) {
    }
  }
  return InvalidArgument("not a number");
}

template <class T>
Result<std::vector<T>> numbers(simdjson::dom::element tree, const char* key) {
  simdjson::dom::array a;
  if (tree[key].get_array().get(a)) return InvalidArgument(std::string("no array '") + key + "'");
  std::vector<T> out;
  out.reserve(a.size());
  for (auto v : a) {
    auto n = number(v);
    if (!n.ok()) return InvalidArgument(std::string("'") + key + "' holds a non-number");
    out.push_back(static_cast<T>(*n));
  }
  return out;
}

}  // namespace

Result<Forest> parse_xgboost_json(std::string_view json, const std::string& origin) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(json.data(), json.size()).get(root)) {
    return bad(origin, std::string("not JSON: ") + simdjson::error_message(error));
  }
  simdjson::dom::element learner;
  if (root["learner"].get(learner)) return bad(origin, "not an XGBoost JSON model (no 'learner')");
  Forest forest;
  std::string_view objective;
  if (learner["objective"]["name"].get_string().get(objective)) {
    return bad(origin, "no objective name");
  }
  forest.objective = std::string(objective);
  simdjson::dom::element params = learner["learner_model_param"];
  auto base_score = number(params["base_score"]);
  auto num_feature = number(params["num_feature"]);
  if (!base_score.ok() || !num_feature.ok()) {
    return bad(origin, "learner_model_param lacks base_score or num_feature");
  }
  forest.num_features = static_cast<std::size_t>(*num_feature);
  for (const char* key : {"num_class", "num_target"}) {
    auto n = number(params[key]);
    if (n.ok() && *n > 1) {
      return bad(origin, std::string("models with several outputs (") + key +
                             " > 1) are not supported by the tree runtime yet");
    }
  }
  // The objective says how the summed margin becomes a prediction, and how base_score (given
  // in prediction space) becomes a margin.
  const std::string_view o = objective;
  if (o == "reg:squarederror" || o == "reg:linear" || o == "reg:pseudohubererror" ||
      o == "reg:absoluteerror") {
    forest.transform = Transform::kIdentity;
    forest.base_margin = *base_score;
  } else if (o == "binary:logistic" || o == "reg:logistic") {
    forest.transform = Transform::kSigmoid;
    forest.base_margin = -std::log(1.0 / *base_score - 1.0);
  } else if (o == "binary:logitraw") {
    forest.transform = Transform::kIdentity;
    forest.base_margin = -std::log(1.0 / *base_score - 1.0);
  } else if (o == "count:poisson" || o == "reg:gamma" || o == "reg:tweedie") {
    forest.transform = Transform::kExp;
    forest.base_margin = std::log(*base_score);
  } else {
    return bad(origin, "objective '" + std::string(o) + "' is not supported by the tree runtime");
  }
  std::string_view booster;
  if (learner["gradient_booster"]["name"].get_string().get(booster) || booster != "gbtree") {
    return bad(origin,
               "only gbtree boosters are supported (this one is '" + std::string(booster) + "')");
  }
  simdjson::dom::array trees;
  if (learner["gradient_booster"]["model"]["trees"].get_array().get(trees)) {
    return bad(origin, "no trees");
  }
  std::size_t t = 0;
  for (auto tree : trees) {
    auto left = numbers<std::int32_t>(tree, "left_children");
    auto right = numbers<std::int32_t>(tree, "right_children");
    auto index = numbers<std::int32_t>(tree, "split_indices");
    auto cond = numbers<float>(tree, "split_conditions");
    auto dflt = numbers<std::int32_t>(tree, "default_left");
    if (!left.ok() || !right.ok() || !index.ok() || !cond.ok() || !dflt.ok()) {
      return bad(origin, "tree " + std::to_string(t) + " is incomplete");
    }
    const std::size_t n = left->size();
    if (n == 0 || right->size() != n || index->size() != n || cond->size() != n ||
        dflt->size() != n) {
      return bad(origin, "tree " + std::to_string(t) + " has arrays of different lengths");
    }
    auto types = numbers<std::int32_t>(tree, "split_type");
    if (types.ok()) {
      for (std::int32_t type : *types) {
        if (type != 0) {
          return bad(origin, "tree " + std::to_string(t) +
                                 " has categorical splits, not supported by the tree runtime yet");
        }
      }
    }
    // Breadth-first renumbering: children of a node take two adjacent slots.
    const auto base = static_cast<std::int32_t>(forest.nodes.size());
    forest.roots.push_back(base);
    forest.nodes.push_back({});
    std::deque<std::pair<std::int32_t, std::int32_t>> queue = {{0, base}};  // (old, new)
    std::size_t visited = 0;
    while (!queue.empty()) {
      const auto [old_id, new_id] = queue.front();
      queue.pop_front();
      if (old_id < 0 || static_cast<std::size_t>(old_id) >= n || ++visited > n) {
        return bad(origin, "tree " + std::to_string(t) + " has a broken child index");
      }
      Node& node = forest.nodes[static_cast<std::size_t>(new_id)];
      node.value = (*cond)[static_cast<std::size_t>(old_id)];
      node.default_left = (*dflt)[static_cast<std::size_t>(old_id)] != 0;
      const std::int32_t l = (*left)[static_cast<std::size_t>(old_id)];
      if (l < 0) {
        node.feature = -1;
        node.left = -1;
        continue;
      }
      const std::int32_t feature = (*index)[static_cast<std::size_t>(old_id)];
      if (feature < 0 || static_cast<std::size_t>(feature) >= forest.num_features) {
        return bad(origin, "tree " + std::to_string(t) + " splits on feature " +
                               std::to_string(feature) + " of " +
                               std::to_string(forest.num_features));
      }
      const auto children = static_cast<std::int32_t>(forest.nodes.size());
      node.feature = feature;
      node.left = children;
      const std::int32_t r = (*right)[static_cast<std::size_t>(old_id)];
      forest.nodes.push_back({});  // may move `node`: not used below
      forest.nodes.push_back({});
      queue.emplace_back(l, children);
      queue.emplace_back(r, children + 1);
    }
    ++t;
  }
  if (forest.roots.empty()) return bad(origin, "the model has no trees");
  return forest;
}

Result<Forest> load_xgboost_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path.string() + ": cannot be read");
  std::stringstream content;
  content << in.rdbuf();
  return parse_xgboost_json(content.str(), path.string());
}

}  // namespace forklift::tree
