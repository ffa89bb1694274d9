// XGBoost's JSON model format (Booster.save_model("model.json")) into a Forest.
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "runtimes/tree/forest.h"

namespace forklift::tree {
namespace {

Status bad(const std::string& origin, const std::string& what) {
  return FailedPrecondition(origin + ": " + what);
}

// XGBoost writes NaN and Infinity as bare words (categorical splits have NaN conditions), which
// JSON does not allow: they become null (NaN) or 1e999 (inf) outside strings.
std::string to_strict_json(std::string_view in) {
  std::string out;
  out.reserve(in.size() + in.size() / 64);
  bool in_string = false;
  std::size_t copied = 0;  // in[copied, i) is still to be appended
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == 'N' && in.compare(i, 3, "NaN") == 0) {
      out.append(in, copied, i - copied).append("null");
      copied = i + 3;
    } else if (c == 'I' && in.compare(i, 8, "Infinity") == 0) {
      out.append(in, copied, i - copied).append("1e999");
      copied = i + 8;
    }
  }
  out.append(in, copied, std::string_view::npos);
  return out;
}

// Numbers in XGBoost's JSON are sometimes strings ("5E-1"); null is NaN.
Result<double> number(simdjson::dom::element e) {
  double d = 0;
  if (!e.get_double().get(d)) return d;
  std::int64_t i = 0;
  if (!e.get_int64().get(i)) return static_cast<double>(i);
  std::uint64_t u = 0;
  if (!e.get_uint64().get(u)) return static_cast<double>(u);
  if (e.is_null()) return std::numeric_limits<double>::quiet_NaN();
  std::string_view s;
  if (!e.get_string().get(s)) {
    try {
      return std::stod(std::string(s));
    } catch (const std::exception&) {
    }
  }
  return InvalidArgument("not a number");
}

// The same for a key's lookup: a missing key is an error here, not an exception.
Result<double> number(simdjson::simdjson_result<simdjson::dom::element> found) {
  simdjson::dom::element e;
  if (found.get(e)) return InvalidArgument("missing");
  return number(e);
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

// The objective says how the summed margin becomes a prediction, and how base_score (given in
// prediction space) becomes a margin.
Status set_objective(Forest& forest, std::string_view o, double base_score,
                     const std::string& origin) {
  forest.objective = std::string(o);
  if (o == "reg:squarederror" || o == "reg:linear" || o == "reg:pseudohubererror" ||
      o == "reg:absoluteerror") {
    forest.transform = Transform::kIdentity;
    forest.base_margin = base_score;
  } else if (o == "binary:logistic" || o == "reg:logistic") {
    forest.transform = Transform::kSigmoid;
    forest.base_margin = -std::log(1.0 / base_score - 1.0);
  } else if (o == "binary:logitraw") {
    forest.transform = Transform::kIdentity;
    forest.base_margin = -std::log(1.0 / base_score - 1.0);
  } else if (o == "count:poisson" || o == "reg:gamma" || o == "reg:tweedie") {
    forest.transform = Transform::kExp;
    forest.base_margin = std::log(base_score);
  } else {
    return bad(origin, "objective '" + std::string(o) + "' is not supported by the tree runtime");
  }
  return Status::Ok();
}

constexpr std::size_t kCategoryBytesFloor = 16u << 20;
constexpr std::size_t kCategoryBytesPerFileByte = 64;

// A categorical node's categories, which XGBoost sends right: one bitset per node. A bitset is
// sized by the node's largest category, not by the bytes that list it (one category of 2^24 makes
// 2 MiB), so the forest's bitsets share a budget of 32-bit words that the file's size sets
// (`words_left`, see kCategoryBytes*).
Status add_category_sets(Forest& forest, simdjson::dom::element tree, RawTree& raw,
                         const std::vector<std::int32_t>& types, const std::string& where,
                         std::size_t& words_left) {
  auto cats = numbers<double>(tree, "categories");
  auto cat_nodes = numbers<std::int64_t>(tree, "categories_nodes");
  auto segments = numbers<std::int64_t>(tree, "categories_segments");
  auto sizes = numbers<std::int64_t>(tree, "categories_sizes");
  if (!cats.ok() || !cat_nodes.ok() || !segments.ok() || !sizes.ok() ||
      segments->size() != cat_nodes->size() || sizes->size() != cat_nodes->size()) {
    return FailedPrecondition(where + " has categorical splits but no complete category lists");
  }
  std::map<std::int64_t, std::size_t> list_of;  // node -> index in categories_nodes
  for (std::size_t i = 0; i < cat_nodes->size(); ++i) list_of[(*cat_nodes)[i]] = i;
  for (std::size_t node = 0; node < types.size(); ++node) {
    if (types[node] == 0 || raw.left[node] < 0) continue;
    const auto it = list_of.find(static_cast<std::int64_t>(node));
    std::vector<std::uint32_t> words;
    if (it != list_of.end()) {
      const std::int64_t begin = (*segments)[it->second], size = (*sizes)[it->second];
      if (begin < 0 || size < 0 || static_cast<std::uint64_t>(begin) > cats->size() ||
          static_cast<std::uint64_t>(size) > cats->size() - static_cast<std::uint64_t>(begin)) {
        return FailedPrecondition(where + " has a category list out of range");
      }
      std::uint32_t largest = 0;
      for (std::int64_t k = begin; k < begin + size; ++k) {
        const double c = (*cats)[static_cast<std::size_t>(k)];
        if (!(c >= 0 && c < (1 << 24))) return FailedPrecondition(where + " has a bad category");
        largest = std::max(largest, static_cast<std::uint32_t>(c));
      }
      const std::size_t needed = size > 0 ? largest / 32 + 1 : 0;
      if (needed > words_left) {
        return FailedPrecondition(
            where +
            ": its category sets would take more memory than a model file of this size "
            "may (the largest category, " +
            std::to_string(largest) +
            ", sets the size of a node's set; see the tree runtime's "
            "limits)");
      }
      words_left -= needed;
      words.assign(needed, 0);
      for (std::int64_t k = begin; k < begin + size; ++k) {
        const auto cat = static_cast<std::uint32_t>((*cats)[static_cast<std::size_t>(k)]);
        words[cat / 32] |= 1u << (cat % 32);
      }
    }
    forest.make_categorical(raw.nodes[node], words, /*in_set_goes_left=*/false);
  }
  return Status::Ok();
}

}  // namespace

Result<Forest> parse_xgboost_json(std::string_view json, const std::string& origin) {
  const std::string strict = to_strict_json(json);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(strict).get(root)) {
    return bad(origin, std::string("not JSON: ") + simdjson::error_message(error));
  }
  simdjson::dom::element learner;
  if (root["learner"].get(learner)) return bad(origin, "not an XGBoost JSON model (no 'learner')");
  Forest forest;
  std::string_view objective;
  if (learner["objective"]["name"].get_string().get(objective)) {
    return bad(origin, "no objective name");
  }
  simdjson::dom::element params;
  if (learner["learner_model_param"].get(params)) return bad(origin, "no learner_model_param");
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
  if (Status s = set_objective(forest, objective, *base_score, origin); !s.ok()) return s;
  std::string_view booster;
  if (learner["gradient_booster"]["name"].get_string().get(booster) || booster != "gbtree") {
    return bad(origin,
               "only gbtree boosters are supported (this one is '" + std::string(booster) + "')");
  }
  simdjson::dom::array trees;
  if (learner["gradient_booster"]["model"]["trees"].get_array().get(trees)) {
    return bad(origin, "no trees");
  }
  // The category bitsets may take 16 MiB plus 64 bytes per byte of the file.
  std::size_t category_words_left =
      (kCategoryBytesFloor + kCategoryBytesPerFileByte * json.size()) / 4;
  std::size_t t = 0;
  for (auto tree : trees) {
    const std::string where = origin + ": tree " + std::to_string(t);
    auto left = numbers<std::int32_t>(tree, "left_children");
    auto right = numbers<std::int32_t>(tree, "right_children");
    auto index = numbers<std::int32_t>(tree, "split_indices");
    auto cond = numbers<float>(tree, "split_conditions");
    auto dflt = numbers<std::int32_t>(tree, "default_left");
    if (!left.ok() || !right.ok() || !index.ok() || !cond.ok() || !dflt.ok()) {
      return FailedPrecondition(where + " is incomplete");
    }
    const std::size_t n = left->size();
    if (right->size() != n || index->size() != n || cond->size() != n || dflt->size() != n) {
      return FailedPrecondition(where + " has arrays of different lengths");
    }
    RawTree raw;
    raw.left = std::move(left).value();
    raw.right = std::move(right).value();
    raw.nodes.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      raw.nodes[i] = Node{(*cond)[i], (*index)[i], 0, static_cast<std::uint8_t>((*dflt)[i] != 0),
                          NodeKind::kNumeric};
    }
    auto types = numbers<std::int32_t>(tree, "split_type");
    if (types.ok() && types->size() == n) {
      bool categorical = false;
      for (std::int32_t type : *types) categorical = categorical || type != 0;
      if (categorical) {
        if (Status s = add_category_sets(forest, tree, raw, *types, where, category_words_left);
            !s.ok()) {
          return s;
        }
      }
    }
    if (Status s = append_tree(forest, raw, where); !s.ok()) return s;
    ++t;
  }
  if (forest.roots.empty()) return bad(origin, "the model has no trees");
  return forest;
}

}  // namespace forklift::tree
