// XGBoost's JSON model format (Booster.save_model("model.json")) into a Forest.
#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>

#include "runtimes/tree/forest.h"
#include "runtimes/tree/number_cast.h"

namespace forklift::tree {
namespace {

Status bad(const std::string& origin, const std::string& what) {
  return FailedPrecondition(origin + ": " + what);
}

// A file XGBoost itself would misread (its predictor assumes what these check): refused outright,
// not left to the library (InvalidArgument; the xgboost runtime refuses the version).
Status malformed(const std::string& where, const std::string& what) {
  return InvalidArgument(where + " " + what);
}

// JSON objects with a key twice: simdjson finds the first, XGBoost keeps the last.
bool has_duplicate_keys(simdjson::dom::element e) {
  simdjson::dom::object object;
  if (e.get_object().get(object)) return false;
  std::vector<std::string_view> keys;
  for (auto field : object) keys.push_back(field.key);
  std::sort(keys.begin(), keys.end());
  return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
}

// A name from the file, quoted only when it looks like an identifier (no file content of other
// shapes reaches a message).
std::string shown_name(std::string_view name) {
  const bool plain =
      !name.empty() && name.size() <= 40 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '_' || c == '-' ||
               c == '.';
      });
  return plain ? "'" + std::string(name) + "'" : std::string("(not shown)");
}

// A decimal that lies exactly between two floats: XGBoost reads it straight into a float, this
// parser through a double, and the two roundings may differ.
bool between_two_floats(double d) {
  const float f = to_float_saturating(d);
  if (static_cast<double>(f) == d || !std::isfinite(f)) return false;
  const float other = std::nextafter(f, d > static_cast<double>(f) ? INFINITY : -INFINITY);
  return (static_cast<double>(f) + static_cast<double>(other)) / 2 == d;
}

// XGBoost writes NaN and Infinity as bare words (categorical splits have NaN conditions), which
// JSON does not allow: they become null (NaN) or the strings "inf" and "-inf" outside strings.
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
    } else if (c == '-' && in.compare(i, 9, "-Infinity") == 0) {
      out.append(in, copied, i - copied).append("\"-inf\"");  // number() reads the string
      copied = i + 9;
      i += 8;
    } else if (c == 'I' && in.compare(i, 8, "Infinity") == 0) {
      out.append(in, copied, i - copied).append("\"inf\"");
      copied = i + 8;
    }
  }
  out.append(in, copied, std::string_view::npos);
  return out;
}

// Numbers in XGBoost's JSON are sometimes strings ("5E-1", "[5E-1]"); null is NaN.
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
    // XGBoost 3.1 writes base_score as a one-element list, "[5E-1]"; a longer list (a base
    // score per output) is not a number.
    if (s.size() >= 2 && s.front() == '[' && s.back() == ']' &&
        s.find(',') == std::string_view::npos) {
      s = s.substr(1, s.size() - 2);
    }
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
    const std::optional<T> x = n.ok() ? checked_number_as<T>(*n) : std::nullopt;
    if (!x) {
      return InvalidArgument(std::string("'") + key + "' holds " +
                             (n.ok() ? "a number out of range" : "a non-number"));
    }
    out.push_back(*x);
  }
  return out;
}

// The objective says how the summed margin becomes a prediction, and how base_score (given in
// prediction space) becomes a margin.
Status set_xgboost_objective(Forest& forest, std::string_view o, double base_score,
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
  } else if (o == "multi:softprob" || o == "multi:softmax") {
    if (forest.num_groups < 2)
      return bad(origin, "objective '" + std::string(o) + "' without classes");
    forest.transform = o == "multi:softprob" ? Transform::kSoftmax : Transform::kArgmax;
    forest.base_margin = base_score;  // softmax objectives take base_score as a margin
  } else {
    return bad(origin,
               "objective " + shown_name(o) + " is not supported by the native tree engine");
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
  for (std::size_t i = 0; i < cat_nodes->size(); ++i) {
    if (!list_of.emplace((*cat_nodes)[i], i).second) {
      return malformed(where, "lists a node's categories twice");
    }
  }
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
  const std::optional<std::size_t> features = checked_number_as<std::size_t>(*num_feature);
  if (!features) return bad(origin, "num_feature is not a count");
  forest.num_features = *features;
  // Several outputs: num_class classes, or num_target targets, each with its own trees.
  constexpr double kMaxGroups = 1 << 16;
  for (const char* key : {"num_class", "num_target"}) {
    auto n = number(params[key]);
    if (!n.ok() || !(*n > 1)) continue;
    const std::optional<std::size_t> groups = checked_number_as<std::size_t>(*n);
    if (!groups || !(*n <= kMaxGroups) || forest.num_groups > 1) {
      return bad(origin, std::string("unsupported ") + key);  // 2.5 classes too
    }
    forest.num_groups = *groups;
  }
  if (Status s = set_xgboost_objective(forest, objective, *base_score, origin); !s.ok()) return s;
  std::string_view booster;
  if (learner["gradient_booster"]["name"].get_string().get(booster) || booster != "gbtree") {
    return bad(origin,
               "only gbtree boosters are supported (this one is " + shown_name(booster) + ")");
  }
  simdjson::dom::array trees;
  if (learner["gradient_booster"]["model"]["trees"].get_array().get(trees)) {
    return bad(origin, "no trees");
  }
  // Which output each tree adds to (all 0 with one output).
  std::vector<std::int32_t> tree_info;
  {
    auto info = numbers<std::int32_t>(learner["gradient_booster"]["model"], "tree_info");
    if (forest.num_groups > 1 && (!info.ok() || info->size() != trees.size())) {
      return bad(origin, "no complete tree_info");
    }
    if (info.ok()) tree_info = std::move(info).value();
  }
  if (forest.num_groups > trees.size()) {
    return bad(origin, "more outputs than trees");  // also bounds the check's memory by the file
  }
  for (const char* path : {"", "/learner", "/learner/learner_model_param", "/learner/objective",
                           "/learner/gradient_booster", "/learner/gradient_booster/model"}) {
    simdjson::dom::element e;
    if (!root.at_pointer(path).get(e) && has_duplicate_keys(e)) {
      return malformed(origin + ":", "has a JSON key twice in one object");
    }
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
    for (const Status* s :
         {&left.status(), &right.status(), &index.status(), &cond.status(), &dflt.status()}) {
      if (!s->ok()) return FailedPrecondition(where + " is incomplete: " + s->message());
    }
    const std::size_t n = left->size();
    if (right->size() != n || index->size() != n || cond->size() != n || dflt->size() != n) {
      return malformed(where, "has arrays of different lengths");
    }
    if (has_duplicate_keys(tree)) return malformed(where, "has a JSON key twice");
    // XGBoost places a tree by its id, and its predictor takes a right child to be the left one
    // plus one: a file where either is not so is read differently by XGBoost and by anyone else.
    auto id = number(tree["id"]);
    if (id.ok() && *id != static_cast<double>(t)) return malformed(where, "has another id");
    for (std::size_t i = 0; i < n; ++i) {
      if ((*left)[i] >= 0 && (*right)[i] != (*left)[i] + 1) {
        return malformed(where, "has a right child that does not follow its left one");
      }
    }
    auto raw_cond = numbers<double>(tree, "split_conditions");
    if (raw_cond.ok()) {
      for (double d : *raw_cond) {
        if (between_two_floats(d)) {
          return FailedPrecondition(where +
                                    " has a split condition whose decimal lies exactly "
                                    "between two floats (read differently by XGBoost)");
        }
      }
    }
    RawTree raw;
    if (auto hessians = numbers<float>(tree, "sum_hessian");
        hessians.ok() && hessians->size() == n) {
      raw.cover = std::move(hessians).value();
    }
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
    auto vector_leaf = number(tree["tree_param"]["size_leaf_vector"]);
    if (vector_leaf.ok() && *vector_leaf > 1) {
      return FailedPrecondition(where +
                                " has vector leaves (multi_strategy multi_output_tree), "
                                "which the native engine does not evaluate");
    }
    const std::int32_t group = t < tree_info.size() ? tree_info[t] : 0;
    if (group < 0 || static_cast<std::size_t>(group) >= forest.num_groups) {
      return malformed(where, "belongs to output " + std::to_string(group) + " of " +
                                  std::to_string(forest.num_groups));
    }
    if (Status s = append_tree(forest, raw, where, group); !s.ok()) return s;
    ++t;
  }
  if (forest.roots.empty()) return bad(origin, "the model has no trees");
  forest.prepare();
  return forest;
}

}  // namespace forklift::tree
