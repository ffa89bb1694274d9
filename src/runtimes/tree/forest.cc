#include "runtimes/tree/forest.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <tuple>

#include "runtimes/tree/complete_rows_simd.h"

namespace forklift::tree {
namespace {

// The slow step, for the rare node kinds: true when the row goes left.
bool special_goes_left(const Forest& f, const Node& n, float x) {
  if (std::isnan(x)) return n.default_left != 0;
  if (n.kind == NodeKind::kZeroMissing) {
    if (x >= -1e-35f && x <= 1e-35f) return n.default_left != 0;
    return x < n.value;
  }
  std::uint32_t index = 0;
  std::memcpy(&index, &n.value, sizeof index);
  const CategorySplit& split = f.category_splits[index];
  bool in_set = false;
  if (x >= 0 && x < static_cast<float>(split.words) * 32) {
    const auto c = static_cast<std::uint32_t>(x);
    in_set = (f.category_words[split.first_word + c / 32] >> (c % 32)) & 1u;
  }
  return in_set == split.in_set_goes_left;
}

}  // namespace

// Without the vector kernels, trees are walked sixteen at a time, interleaved: the chains of
// dependent loads overlap instead of waiting for each other (measured on eta, 400 trees: one row
// in 4.0 µs instead of 7.1 µs one tree after another; 8 lanes gave 4.6 µs). Rows of a batch go
// through each tree in blocks of 64 for the same reason, and so that a tree's nodes are read
// once per block (docs/explanation/native-engine.md).
constexpr std::size_t kLanes = 16;
constexpr std::size_t kRowBlock = 64;
// The complete-tree layout's limits: 2^10 leaves per tree, and at most 8 times the real nodes.
constexpr int kMaxCompleteDepth = 10;
constexpr std::size_t kMaxPadding = 8;

template <bool kSpecial>
const Node* Forest::walk_step(const Node* n, const float* row) const {
  const float x = row[n->feature];
  bool left;
  if (kSpecial && n->kind != NodeKind::kNumeric) {
    left = special_goes_left(*this, *n, x);
  } else {
    // NaN compares false: a missing value follows the node's default direction instead.
    left = std::isnan(x) ? n->default_left != 0 : x < n->value;
  }
  return nodes.data() + n->left + (left ? 0 : 1);
}

template <bool kSpecial>
const Node* Forest::leaf_of(std::int32_t root, const float* row) const {
  const Node* n = nodes.data() + root;
  while (n->feature >= 0) n = walk_step<kSpecial>(n, row);
  return n;
}

template <bool kSpecial, typename Visit>
void Forest::for_each_leaf(const float* row, Visit&& visit) const {
  const Node* all = nodes.data();
  const std::size_t trees = roots.size();
  std::size_t t = 0;
  for (; t + kLanes <= trees; t += kLanes) {
    const Node* at[kLanes];
    for (std::size_t i = 0; i < kLanes; ++i) at[i] = all + roots[t + i];
    for (bool moving = true; moving;) {
      moving = false;
      for (std::size_t i = 0; i < kLanes; ++i) {
        if (at[i]->feature >= 0) {
          at[i] = walk_step<kSpecial>(at[i], row);
          moving = true;
        }
      }
    }
    for (std::size_t i = 0; i < kLanes; ++i) visit(t + i, at[i]);
  }
  for (; t < trees; ++t) visit(t, leaf_of<kSpecial>(roots[t], row));
}

template <bool kSpecial>
void Forest::sum_by_walking(const float* row, double* sums) const {
  if (num_groups > 1) {
    for_each_leaf<kSpecial>(
        row, [&](std::size_t t, const Node* leaf) { sums[tree_group[t]] += leaf->value; });
  } else {
    for_each_leaf<kSpecial>(row, [&](std::size_t, const Node* leaf) { sums[0] += leaf->value; });
  }
}

namespace {

// One step down a complete tree (its thresholds and features): node i's children are 2i+1
// (left) and 2i+2.
inline std::uint32_t complete_step(const float* thresholds, const std::int32_t* features,
                                   std::uint32_t i, const float* row) {
  const auto feature = static_cast<std::uint32_t>(features[i]);
  const float x = row[feature & 0x7fffffffu];
  // x < t goes left; NaN compares false, so it goes left only when missing goes left.
  const bool left = (x < thresholds[i]) | ((x != x) & ((feature >> 31) != 0));
  return 2 * i + 2 - static_cast<std::uint32_t>(left);
}

}  // namespace

void Forest::sum_complete(const float* row, double* sums) const {
  if (use_vector_kernels() && roots.size() * complete_.stride < (std::size_t{1} << 30)) {
    CompleteRowsJob job{complete_.thresholds.data(),
                        complete_.features.data(),
                        complete_.stride,
                        complete_.leaves.data(),
                        tree_group.data(),
                        roots.size(),
                        complete_.depth,
                        num_groups,
                        row,
                        1,
                        num_features,
                        sums};
    job.top_thresholds = complete_.top_thresholds.data();
    job.top_features = complete_.top_features.data();
    job.top_levels = complete_.top_levels;
    job.missing_left_bits = complete_.missing_left_bits.data();
    if (use_avx512_one_row(job)) {
      complete_one_row_avx512(job);
    } else {
      complete_one_row_avx2(job);
    }
    return;
  }
  const int depth = complete_.depth;
  const std::size_t inner = (std::size_t{1} << depth) - 1, leaves = inner + 1;
  const float* thresholds = complete_.thresholds.data();
  const std::int32_t* features = complete_.features.data();
  const std::size_t stride = complete_.stride;
  const float* leaf = complete_.leaves.data();
  const bool grouped = num_groups > 1;
  const std::size_t trees = roots.size();
  std::size_t t = 0;
  for (; t + kLanes <= trees; t += kLanes) {
    std::uint32_t at[kLanes] = {};
    for (int level = 0; level < depth; ++level) {
      for (std::size_t i = 0; i < kLanes; ++i) {
        const std::size_t tree = (t + i) * stride;
        at[i] = complete_step(thresholds + tree, features + tree, at[i], row);
      }
    }
    for (std::size_t i = 0; i < kLanes; ++i) {
      sums[grouped ? tree_group[t + i] : 0] += leaf[(t + i) * leaves + at[i] - inner];
    }
  }
  for (; t < trees; ++t) {
    std::uint32_t at = 0;
    for (int level = 0; level < depth; ++level) {
      at = complete_step(thresholds + t * stride, features + t * stride, at, row);
    }
    sums[grouped ? tree_group[t] : 0] += leaf[t * leaves + at - inner];
  }
}

void Forest::sum_complete_rows(const float* rows, std::size_t n, double* sums) const {
  // The vector kernel indexes rows with 32-bit lanes: 64 rows of num_features must fit in them.
  if (use_vector_kernels() && num_features < (std::size_t{1} << 25)) {
    complete_rows_avx2(CompleteRowsJob{complete_.thresholds.data(), complete_.features.data(),
                                       complete_.stride, complete_.leaves.data(), tree_group.data(),
                                       roots.size(), complete_.depth, num_groups, rows, n,
                                       num_features, sums});
    return;
  }
  const int depth = complete_.depth;
  const std::size_t inner = (std::size_t{1} << depth) - 1, leaves = inner + 1;
  const std::size_t cols = num_features, groups = num_groups;
  for (std::size_t t = 0; t < roots.size(); ++t) {
    const float* thresholds = complete_.thresholds.data() + t * complete_.stride;
    const std::int32_t* features = complete_.features.data() + t * complete_.stride;
    const float* leaf = complete_.leaves.data() + t * leaves;
    const std::size_t g = groups > 1 ? static_cast<std::size_t>(tree_group[t]) : 0;
    std::uint32_t at[kRowBlock] = {};
    for (int level = 0; level < depth; ++level) {
      for (std::size_t r = 0; r < n; ++r) {
        at[r] = complete_step(thresholds, features, at[r], rows + r * cols);
      }
    }
    for (std::size_t r = 0; r < n; ++r) sums[r * groups + g] += leaf[at[r] - inner];
  }
}

// Adds one row's leaves to `sums` (num_groups values), tree after tree, on whichever layout.
// Every path adds the same leaves in the same order, so they give the same bits.
void Forest::add_leaves(const float* row, double* sums) const {
  if (complete_.depth > 0) {
    sum_complete(row, sums);
  } else if (has_special_nodes) {
    sum_by_walking<true>(row, sums);
  } else {
    sum_by_walking<false>(row, sums);
  }
}

void Forest::apply_transform(const double* m, double* out) const {
  switch (transform) {
    case Transform::kIdentity:
      for (std::size_t g = 0; g < num_groups; ++g) out[g] = m[g];
      return;
    case Transform::kSigmoid:
      for (std::size_t g = 0; g < num_groups; ++g)
        out[g] = 1.0 / (1.0 + std::exp(-sigmoid_scale * m[g]));
      return;
    case Transform::kExp:
      for (std::size_t g = 0; g < num_groups; ++g) out[g] = std::exp(m[g]);
      return;
    case Transform::kSoftmax: {
      double top = m[0];
      for (std::size_t g = 1; g < num_groups; ++g) top = std::max(top, m[g]);
      double total = 0;
      for (std::size_t g = 0; g < num_groups; ++g) total += out[g] = std::exp(m[g] - top);
      for (std::size_t g = 0; g < num_groups; ++g) out[g] /= total;
      return;
    }
    case Transform::kArgmax: {
      std::size_t best = 0;
      for (std::size_t g = 1; g < num_groups; ++g) {
        if (m[g] > m[best]) best = g;
      }
      out[0] = static_cast<double>(best);
      return;
    }
  }
}

void Forest::margins(const float* row, double* out) const {
  std::fill(out, out + num_groups, 0.0);
  add_leaves(row, out);
  for (std::size_t g = 0; g < num_groups; ++g) out[g] = base_margin + leaf_scale * out[g];
}

std::int32_t Forest::child_taken(std::int32_t n, const float* row) const {
  return static_cast<std::int32_t>(walk_step<true>(&nodes[static_cast<std::size_t>(n)], row) -
                                   nodes.data());
}

void Forest::leaves_reached(const float* row, std::int32_t* ids, double* magnitudes) const {
  std::fill(magnitudes, magnitudes + num_groups, std::abs(base_margin));
  const auto visit = [&](std::size_t t, const Node* leaf) {
    ids[t] = source_id[static_cast<std::size_t>(leaf - nodes.data())];
    magnitudes[num_groups > 1 ? tree_group[t] : 0] += std::abs(static_cast<double>(leaf->value));
  };
  if (has_special_nodes) {
    for_each_leaf<true>(row, visit);
  } else {
    for_each_leaf<false>(row, visit);
  }
}

void Forest::predict(const float* rows, std::size_t n, double* out, double* margins) const {
  const std::size_t groups = num_groups, per_row = outputs_per_row();
  // Scratch for a block's sums, kept by the thread: no allocation per prediction.
  thread_local std::vector<double> sums;
  sums.resize(kRowBlock * groups);
  // A few rows go one at a time, their trees interleaved; more go in blocks through each tree.
  const bool blocks = n >= 4 && complete_.depth > 0;
  for (std::size_t first = 0; first < n; first += kRowBlock) {
    const std::size_t m = std::min(kRowBlock, n - first);
    const float* block = rows + first * num_features;
    std::fill(sums.begin(), sums.begin() + static_cast<std::ptrdiff_t>(m * groups), 0.0);
    if (blocks) {
      sum_complete_rows(block, m, sums.data());
    } else {
      for (std::size_t r = 0; r < m; ++r)
        add_leaves(block + r * num_features, sums.data() + r * groups);
    }
    for (std::size_t r = 0; r < m; ++r) {
      double* margin = sums.data() + r * groups;
      for (std::size_t g = 0; g < groups; ++g) margin[g] = base_margin + leaf_scale * margin[g];
      apply_transform(margin, out + (first + r) * per_row);
    }
    if (margins != nullptr) std::copy_n(sums.data(), m * groups, margins + first * groups);
  }
}

double Forest::predict(const float* row) const {
  if (num_groups == 1) {
    double sum = 0;
    add_leaves(row, &sum);
    double out = 0;
    const double margin = base_margin + leaf_scale * sum;
    apply_transform(&margin, &out);
    return out;
  }
  thread_local std::vector<double> out;
  out.resize(num_groups);
  predict(row, 1, out.data());
  return out[0];
}

void Forest::prepare() {
  complete_ = {};
  if (has_special_nodes || roots.empty()) return;
  // Each tree's depth, from the breadth-first layout (children at left and left + 1).
  int depth = 0;
  std::vector<std::pair<std::int32_t, int>> stack;
  for (std::int32_t root : roots) {
    stack.assign(1, {root, 0});
    while (!stack.empty()) {
      const auto [i, d] = stack.back();
      stack.pop_back();
      const Node& n = nodes[static_cast<std::size_t>(i)];
      if (n.feature < 0) {
        depth = std::max(depth, d);
        continue;
      }
      if (d >= kMaxCompleteDepth) return;
      stack.push_back({n.left, d + 1});
      stack.push_back({n.left + 1, d + 1});
    }
  }
  const std::size_t inner = (std::size_t{1} << depth) - 1, leaves = inner + 1;
  if (depth == 0 || roots.size() * leaves > kMaxPadding * nodes.size() + 1024) return;
  CompleteTrees built;
  built.depth = depth;
  built.stride = (inner + 7) / 8 * 8 + 8;
  built.thresholds.assign(roots.size() * built.stride, 0.0f);
  built.features.assign(roots.size() * built.stride, 0);
  built.leaves.resize(roots.size() * leaves);
  // (node, its slot in the complete tree, its depth)
  std::vector<std::tuple<std::int32_t, std::size_t, int>> work;
  for (std::size_t t = 0; t < roots.size(); ++t) {
    float* thresholds = built.thresholds.data() + t * built.stride;
    std::int32_t* features = built.features.data() + t * built.stride;
    float* leaf = built.leaves.data() + t * leaves;
    work.assign(1, {roots[t], 0, 0});
    while (!work.empty()) {
      const auto [i, slot, d] = work.back();
      work.pop_back();
      const Node& n = nodes[static_cast<std::size_t>(i)];
      if (n.feature < 0) {
        // A leaf at depth d fills the 2^(depth-d) leaf slots below its slot; the nodes above
        // them keep {0, 0}: whichever way a row goes there, it reaches this value.
        std::size_t first = slot, count = 1;
        for (int k = d; k < depth; ++k) {
          first = 2 * first + 1;
          count *= 2;
        }
        std::fill(leaf + (first - inner), leaf + (first - inner + count), n.value);
        continue;
      }
      thresholds[slot] = n.value;
      features[slot] = static_cast<std::int32_t>(static_cast<std::uint32_t>(n.feature) |
                                                 (n.default_left ? 0x80000000u : 0u));
      work.push_back({n.left, 2 * slot + 1, d + 1});
      work.push_back({n.left + 1, 2 * slot + 2, d + 1});
    }
  }
  if (depth <= kMaxAvx512OneRowDepth) {
    built.missing_left_bits.assign(roots.size(), 0);
    for (std::size_t t = 0; t < roots.size(); ++t) {
      for (std::size_t i = 0; i < inner; ++i) {
        if (built.features[t * built.stride + i] < 0) built.missing_left_bits[t] |= 2ull << i;
      }
    }
  }
  // The top levels of each run of eight trees, slot by slot, the eight trees side by side.
  built.top_levels = std::min(depth, kTopLevels);
  const std::size_t top_slots = (std::size_t{1} << built.top_levels) - 1, runs = roots.size() / 8;
  built.top_thresholds.assign(runs * top_slots * 8, 0.0f);
  built.top_features.assign(runs * top_slots * 8, 0);
  for (std::size_t run = 0; run < runs; ++run) {
    for (std::size_t slot = 0; slot < top_slots; ++slot) {
      for (std::size_t lane = 0; lane < 8; ++lane) {
        const std::size_t tree = run * 8 + lane, at = (run * top_slots + slot) * 8 + lane;
        built.top_thresholds[at] = built.thresholds[tree * built.stride + slot];
        built.top_features[at] = built.features[tree * built.stride + slot];
      }
    }
  }
  complete_ = std::move(built);
}

void Forest::make_categorical(Node& node, std::span<const std::uint32_t> words,
                              bool in_set_goes_left) {
  const auto index = static_cast<std::uint32_t>(category_splits.size());
  category_splits.push_back(CategorySplit{static_cast<std::uint32_t>(category_words.size()),
                                          static_cast<std::uint32_t>(words.size()),
                                          in_set_goes_left});
  category_words.insert(category_words.end(), words.begin(), words.end());
  node.kind = NodeKind::kCategorical;
  std::memcpy(&node.value, &index, sizeof index);  // a categorical node's value is its split
}

Status append_tree(Forest& forest, const RawTree& tree, const std::string& where,
                   std::int32_t group) {
  const std::size_t n = tree.nodes.size();
  const auto broken = [&] { return InvalidArgument(where + " has a broken child index"); };
  if (n == 0 || tree.left.size() != n || tree.right.size() != n) {
    return FailedPrecondition(where + " has arrays of different lengths");
  }
  // Breadth-first renumbering: children of a node take two adjacent slots.
  const auto base = static_cast<std::int32_t>(forest.nodes.size());
  forest.roots.push_back(base);
  forest.tree_group.push_back(group);
  forest.nodes.push_back({});
  forest.source_id.push_back(-1);
  std::deque<std::pair<std::int32_t, std::int32_t>> queue = {{tree.root, base}};  // (old, new)
  std::size_t visited = 0;
  while (!queue.empty()) {
    const auto [old_id, new_id] = queue.front();
    queue.pop_front();
    if (old_id < 0 || static_cast<std::size_t>(old_id) >= n || ++visited > n) return broken();
    const auto old = static_cast<std::size_t>(old_id);
    Node node = tree.nodes[old];
    forest.source_id[static_cast<std::size_t>(new_id)] = old_id;
    if (tree.left[old] < 0) {
      node.feature = -1;
      node.left = -1;
      node.kind = NodeKind::kNumeric;
      forest.nodes[static_cast<std::size_t>(new_id)] = node;
      continue;
    }
    if (tree.right[old] < 0) return broken();
    if (node.feature < 0 || static_cast<std::size_t>(node.feature) >= forest.num_features) {
      return InvalidArgument(where + " splits on feature " + std::to_string(node.feature) + " of " +
                             std::to_string(forest.num_features));
    }
    if (node.kind != NodeKind::kNumeric) forest.has_special_nodes = true;
    const auto children = static_cast<std::int32_t>(forest.nodes.size());
    node.left = children;
    forest.nodes[static_cast<std::size_t>(new_id)] = node;
    forest.nodes.push_back({});
    forest.nodes.push_back({});
    forest.source_id.push_back(-1);
    forest.source_id.push_back(-1);
    queue.emplace_back(tree.left[old], children);
    queue.emplace_back(tree.right[old], children + 1);
  }
  // Covers only while every tree so far has had them.
  if (tree.cover.size() == n && forest.cover.size() == static_cast<std::size_t>(base)) {
    forest.cover.resize(forest.nodes.size());
    for (std::size_t i = static_cast<std::size_t>(base); i < forest.nodes.size(); ++i) {
      forest.cover[i] = tree.cover[static_cast<std::size_t>(forest.source_id[i])];
    }
  } else {
    forest.cover.clear();
  }
  return Status::Ok();
}

Result<std::string> read_model_text(const std::filesystem::path& path) {
  // Read straight into one string of the file's size (a stringstream copied it twice).
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return NotFound(path.string() + ": cannot be read");
  const std::streamoff size = in.tellg();
  if (size < 0) return NotFound(path.string() + ": cannot be read");
  std::string text(static_cast<std::size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(text.data(), size)) return NotFound(path.string() + ": cannot be read");
  return text;
}

Result<Forest> load_forest(const std::filesystem::path& path) {
  auto text = read_model_text(path);
  if (!text.ok()) return text.status();
  const std::size_t first = text->find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (*text)[first] == '{') {
    return parse_xgboost_json(*text, path.string());
  }
  return parse_lightgbm_text(*text, path.string());
}

}  // namespace forklift::tree
