// Explanations (tree_shap.h): against XGBoost's own pred_contribs on the example model and on
// models XGBoost trained (scripts/make_tree_test_models.py), within 1e-4 of every value (relative,
// for values above 1); the quadrature walk against the path-weights walk, within 1e-9; which walk
// a forest takes; the covers, depths and request sizes that are refused.
#include "runtimes/tree/tree_shap.h"

#include <gtest/gtest.h>
#include <xgboost/c_api.h>

#include <cmath>
#include <memory>
#include <random>

#include "runtimes/xgboost_library.h"

namespace forklift {
namespace {

const std::filesystem::path kShapTestModels(FORKLIFT_TEST_MODELS);
const std::filesystem::path kEtaForestFile =
    std::filesystem::path(FORKLIFT_EXAMPLE_MODELS) / "eta" / "2" / "model.json";

// Rows around the model's thresholds (on them, just below, between), a tenth missing.
std::vector<float> rows_for(const tree::Forest& forest, std::size_t rows, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<float>> thresholds(forest.num_features);
  for (const tree::Node& n : forest.nodes) {
    if (n.feature >= 0) thresholds[static_cast<std::size_t>(n.feature)].push_back(n.value);
  }
  std::vector<float> out(rows * forest.num_features);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t f = 0; f < forest.num_features; ++f) {
      const auto& t = thresholds[f];
      float& v = out[r * forest.num_features + f];
      const unsigned pick = rng() % 10;
      if (pick == 0 || t.empty()) {
        v = NAN;
      } else {
        v = t[rng() % t.size()];
        if (pick < 4) v = std::nextafter(v, -INFINITY);
        if (pick >= 7) v += static_cast<float>(rng() % 100) / 50.0f - 1.0f;
      }
    }
  }
  return out;
}

void expect_like_xgboost(const std::filesystem::path& file) {
  SCOPED_TRACE(file.filename().string());
  auto forest = tree::load_forest(file);
  ASSERT_TRUE(forest.ok()) << forest.status().message();
  auto explainer = tree::TreeExplainer::build(*forest);
  ASSERT_TRUE(explainer.ok()) << explainer.status().message();
  EXPECT_EQ(explainer->walk(), tree::TreeExplainer::Walk::kQuadrature);
  BoosterHandle raw = nullptr;
  ASSERT_EQ(XGBoosterCreate(nullptr, 0, &raw), 0);
  const std::unique_ptr<void, int (*)(BoosterHandle)> booster(raw, XGBoosterFree);
  ASSERT_EQ(XGBoosterLoadModel(raw, file.c_str()), 0) << XGBGetLastError();
  ASSERT_EQ(XGBoosterSetParam(raw, "nthread", "1"), 0);

  const std::size_t n = 300, cols = forest->num_features, width = explainer->values_per_row();
  const std::vector<float> rows = rows_for(*forest, n, 7);
  const float* want = nullptr;
  std::size_t total = 0;
  ASSERT_TRUE(xgboost_predict(raw, nullptr, rows.data(), n, cols,
                              tree::LibraryOutput::kContributions, want, total)
                  .ok())
      << xgboost_last_error();
  ASSERT_EQ(total, n * width);
  std::vector<double> got(width), margins(forest->num_groups);
  int bad = 0;
  double worst = 0;
  for (std::size_t r = 0; r < n; ++r) {
    explainer->explain(rows.data() + r * cols, got.data());
    for (std::size_t i = 0; i < width; ++i) {
      const double expected = want[r * width + i];
      worst = std::max(worst, std::abs(got[i] - expected) / std::max(1.0, std::abs(expected)));
      // 1e-4, relative above 1: XGBoost computes in float32, whose spacing alone is 2.4e-4 at
      // 2,500 (eta's contributions reach thousands of seconds).
      if (!(std::abs(got[i] - expected) <= 1e-4 * std::max(1.0, std::abs(expected))) && ++bad < 5) {
        ADD_FAILURE() << "row " << r << " value " << i << ": " << got[i] << " vs XGBoost's "
                      << expected;
      }
    }
    // They add up to the margin.
    forest->margins(rows.data() + r * cols, margins.data());
    for (std::size_t g = 0; g < forest->num_groups; ++g) {
      double sum = 0;
      for (std::size_t i = 0; i <= cols; ++i) sum += got[g * (cols + 1) + i];
      EXPECT_NEAR(sum, margins[g], 1e-6 * std::max(1.0, std::abs(margins[g]))) << "row " << r;
    }
  }
  EXPECT_EQ(bad, 0) << "worst relative difference " << worst;
}

TEST(TreeShap, EqualsXGBoostContributionsOnTheExampleModel) {
  expect_like_xgboost(kEtaForestFile);
}

TEST(TreeShap, EqualsXGBoostContributionsOnTrainedModels) {
  for (const char* name : {"xgb_small_reg.json", "xgb_multiclass_softprob.json",
                           "xgb_multitarget.json", "xgb_categorical_reg.json"}) {
    expect_like_xgboost(kShapTestModels / name);
  }
}

// The two walks give the same values (to rounding) on `forest`, for rows around its thresholds.
void expect_walks_agree(const tree::Forest& forest, std::size_t n = 200) {
  auto quadrature = tree::TreeExplainer::build(forest);
  auto paths = tree::TreeExplainer::build(forest, tree::TreeExplainer::Walk::kPathWeights);
  ASSERT_TRUE(quadrature.ok() && paths.ok());
  ASSERT_EQ(quadrature->walk(), tree::TreeExplainer::Walk::kQuadrature);
  ASSERT_EQ(paths->walk(), tree::TreeExplainer::Walk::kPathWeights);
  const std::size_t cols = forest.num_features, width = paths->values_per_row();
  const std::vector<float> rows = rows_for(forest, n, 11);
  std::vector<double> a(width), b(width);
  int bad = 0;
  for (std::size_t r = 0; r < n; ++r) {
    quadrature->explain(rows.data() + r * cols, a.data());
    paths->explain(rows.data() + r * cols, b.data());
    for (std::size_t i = 0; i < width; ++i) {
      if (!(std::abs(a[i] - b[i]) <= 1e-9 * std::max(1.0, std::abs(b[i]))) && ++bad < 5) {
        ADD_FAILURE() << "row " << r << " value " << i << ": " << a[i] << " by quadrature, " << b[i]
                      << " by path weights";
      }
    }
  }
}

TEST(TreeShap, QuadratureEqualsPathWeightsOnTheExamplesAndTrainedModels) {
  for (const std::filesystem::path& file :
       {kEtaForestFile, kShapTestModels / "xgb_small_reg.json",
        kShapTestModels / "xgb_multiclass_softprob.json", kShapTestModels / "xgb_multitarget.json",
        kShapTestModels / "xgb_categorical_reg.json"}) {
    SCOPED_TRACE(file.filename().string());
    auto forest = tree::load_forest(file);
    ASSERT_TRUE(forest.ok()) << forest.status().message();
    expect_walks_agree(*forest);
  }
}

// A random tree `depth` levels deep over few features (so most paths meet a feature again, some
// several times), with random covers and leaves: complete for five levels, then one path on to
// the full depth with a few side branches (a complete tree of depth 40 would not fit in memory).
tree::RawTree random_tree(std::mt19937& rng, int depth, int features) {
  tree::RawTree t;
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  struct Open {
    std::int32_t index;
    int level;
    bool on_spine;
  };
  std::vector<Open> open{{0, 0, true}};
  t.nodes.push_back({});
  t.left.push_back(-1);
  t.right.push_back(-1);
  t.cover.push_back(1000.0f);
  for (std::size_t k = 0; k < open.size(); ++k) {
    const Open o = open[k];
    const auto at = static_cast<std::size_t>(o.index);
    if (o.level == depth || (o.level >= 5 && !o.on_spine && rng() % 8 != 0)) {
      t.nodes[at] = {unit(rng) * 4 - 2, -1, 0, 0, tree::NodeKind::kNumeric};
      continue;
    }
    t.nodes[at] = {unit(rng), static_cast<std::int32_t>(rng() % static_cast<unsigned>(features)), 0,
                   static_cast<std::uint8_t>(rng() % 2), tree::NodeKind::kNumeric};
    const float share = 0.02f + 0.96f * unit(rng);
    const int spine_side = static_cast<int>(rng() % 2);
    for (int side = 0; side < 2; ++side) {
      const auto child = static_cast<std::int32_t>(t.nodes.size());
      (side == 0 ? t.left : t.right)[at] = child;
      t.nodes.push_back({});
      t.left.push_back(-1);
      t.right.push_back(-1);
      t.cover.push_back(t.cover[at] * (side == 0 ? share : 1 - share));
      open.push_back({child, o.level + 1, o.on_spine && side == spine_side});
    }
  }
  return t;
}

// Depths past 8 take more quadrature points (8, 16 and 32 lanes), and repeated features take
// the walk's hand-over between a feature's edges.
TEST(TreeShap, QuadratureEqualsPathWeightsOnDeepTreesWithRepeatedFeatures) {
  std::mt19937 rng(5);
  for (const int depth : {3, 8, 9, 16, 17, 40}) {
    SCOPED_TRACE("depth " + std::to_string(depth));
    tree::Forest forest;
    forest.num_features = 5;
    for (int t = 0; t < 6; ++t) {
      ASSERT_TRUE(tree::append_tree(forest, random_tree(rng, depth, 5), "random").ok());
    }
    forest.prepare();
    expect_walks_agree(forest, 50);
  }
}

// A chain of `splits` splits, alternating between features 0 and 1 (split i at threshold i):
// each left child a leaf of value i, each right child the next split; `cover(i)` gives split i's
// cover, the leaves beside it half of that.
tree::Forest chain_forest(int splits, float (*cover)(int)) {
  tree::Forest forest;
  forest.num_features = 2;
  tree::RawTree chain;
  for (int i = 0; i < splits; ++i) {
    const auto split = static_cast<std::int32_t>(chain.nodes.size());
    chain.nodes.push_back({static_cast<float>(i), i % 2, 0, 0, tree::NodeKind::kNumeric});
    chain.left.push_back(split + 1);
    chain.right.push_back(split + 2);
    chain.nodes.push_back({static_cast<float>(i), -1, 0, 0, tree::NodeKind::kNumeric});
    chain.left.push_back(-1);
    chain.right.push_back(-1);
  }
  chain.nodes.push_back({-1.0f, -1, 0, 0, tree::NodeKind::kNumeric});
  chain.left.push_back(-1);
  chain.right.push_back(-1);
  chain.cover.assign(chain.nodes.size(), 1.0f);
  for (int i = 0; i < splits; ++i) {
    chain.cover[static_cast<std::size_t>(2 * i)] = cover(i);
    chain.cover[static_cast<std::size_t>(2 * i + 1)] = cover(i) / 2;
  }
  chain.cover.back() = cover(splits - 1) / 2;
  EXPECT_TRUE(tree::append_tree(forest, chain, "chain").ok());
  forest.prepare();
  return forest;
}

// The values add up to the margin, and none is NaN or infinite.
void expect_adds_up(const tree::Forest& forest, const tree::TreeExplainer& explainer,
                    const float* row) {
  std::vector<double> out(explainer.values_per_row());
  explainer.explain(row, out.data());
  double sum = 0;
  for (const double v : out) {
    EXPECT_TRUE(std::isfinite(v));
    sum += v;
  }
  double margin = 0;
  forest.margins(row, &margin);
  EXPECT_NEAR(sum, margin, 1e-9 * std::max(1.0, std::abs(margin)));
}

// Covers that grow down a path (a child's above its parent's) are no trained model's: the
// explainer refuses them, with the reason. (Swinging by e^82 at a time, they once overflowed
// quadrature's intermediate products into NaN; and the values cannot add up to the margin.)
TEST(TreeShap, CoversThatGrowDownAPathAreRefused) {
  const tree::Forest forest = chain_forest(9, [](int i) { return i % 2 == 0 ? 1e-36f : 0.41f; });
  auto explainer = tree::TreeExplainer::build(forest);
  ASSERT_FALSE(explainer.ok());
  EXPECT_EQ(explainer.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(explainer.status().message().find("larger than its parent's"), std::string::npos)
      << explainer.status().message();
}

// A chain 100 deep: quadrature's powers of (1 - y) would leave a double's range, so the
// path-weights walk explains it, and its values add up.
TEST(TreeShap, VeryDeepTreesTakeThePathWeightsWalk) {
  const tree::Forest forest = chain_forest(100, [](int i) { return 1.0f - 0.001f * i; });
  auto explainer = tree::TreeExplainer::build(forest);
  ASSERT_TRUE(explainer.ok()) << explainer.status().message();
  EXPECT_EQ(explainer->walk(), tree::TreeExplainer::Walk::kPathWeights);
  const float row[] = {-5.0f, 50.5f};
  expect_adds_up(forest, *explainer, row);
}

TEST(TreeShap, ModelsWithoutCoversOrTooDeepAreNotExplained) {
  tree::Forest forest;
  forest.num_features = 1;
  tree::RawTree chain;
  // A chain deeper than kMaxExplainedDepth: every left child a leaf, every right one a split.
  const int depth = tree::kMaxExplainedDepth + 2;
  for (int i = 0; i < depth; ++i) {
    chain.nodes.push_back({static_cast<float>(i), 0, 0, 0, tree::NodeKind::kNumeric});
    chain.left.push_back(2 * i + 1);
    chain.right.push_back(2 * i + 2);
    chain.nodes.push_back({1.0f, -1, 0, 0, tree::NodeKind::kNumeric});  // leaf 2i+1
    chain.left.push_back(-1);
    chain.right.push_back(-1);
  }
  // (right child of the last split: a leaf)
  chain.nodes.push_back({2.0f, -1, 0, 0, tree::NodeKind::kNumeric});
  chain.left.push_back(-1);
  chain.right.push_back(-1);
  // Splits at even indices, the leaf beside each at the odd one after it; the last split's right
  // child is the final leaf.
  tree::Forest no_covers = forest;
  ASSERT_TRUE(tree::append_tree(no_covers, chain, "chain").ok());
  auto refused = tree::TreeExplainer::build(no_covers);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("covers"), std::string::npos);

  chain.cover.assign(chain.nodes.size(), 1.0f);
  ASSERT_TRUE(tree::append_tree(forest, chain, "chain").ok());
  auto deep = tree::TreeExplainer::build(forest);
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.status().message().find("deeper than"), std::string::npos)
      << deep.status().message();
}

// Covers that are not finite positive numbers would give NaN or absurd contributions: refused.
TEST(TreeShap, CoversThatAreNotFinitePositiveNumbersAreRefused) {
  for (const float bad : {0.0f, -1.0f, NAN, INFINITY}) {
    auto forest = tree::load_forest(kShapTestModels / "xgb_small_reg.json");
    ASSERT_TRUE(forest.ok());
    ASSERT_TRUE(tree::TreeExplainer::build(*forest).ok());
    forest->cover[forest->cover.size() / 2] = bad;
    auto refused = tree::TreeExplainer::build(*forest);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_NE(refused.status().message().find("finite positive"), std::string::npos);
  }
}

// The work of a request is bounded before any is done: by rows for eta, and not even one row of
// a forest of long chains.
TEST(TreeShap, ARequestsWorkIsBoundedBeforeItStarts) {
  auto eta = tree::load_forest(kEtaForestFile);
  ASSERT_TRUE(eta.ok());
  auto explainer = tree::TreeExplainer::build(*eta);
  ASSERT_TRUE(explainer.ok());
  EXPECT_TRUE(explainer->check_budget(10).ok());
  const Status many = explainer->check_budget(1000);
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(many.message().find("rows of this model can be explained per request"),
            std::string::npos)
      << many.message();

  // 60 chains of depth 127 (the path-weights walk): each row would take 3 x 60 x (2^2 + ... +
  // 128^2) steps.
  tree::Forest chains;
  chains.num_features = 1;
  for (int t = 0; t < 60; ++t) {
    tree::RawTree chain;
    const int depth = 127;
    for (int i = 0; i < depth; ++i) {
      const auto split = static_cast<std::int32_t>(chain.nodes.size());
      chain.nodes.push_back({static_cast<float>(i), 0, 0, 0, tree::NodeKind::kNumeric});
      chain.left.push_back(split + 1);
      chain.right.push_back(split + 2);
      chain.nodes.push_back({1.0f, -1, 0, 0, tree::NodeKind::kNumeric});
      chain.left.push_back(-1);
      chain.right.push_back(-1);
    }
    chain.nodes.push_back({2.0f, -1, 0, 0, tree::NodeKind::kNumeric});
    chain.left.push_back(-1);
    chain.right.push_back(-1);
    chain.cover.assign(chain.nodes.size(), 1.0f);
    ASSERT_TRUE(tree::append_tree(chains, chain, "chain").ok());
  }
  auto deep = tree::TreeExplainer::build(chains);
  ASSERT_TRUE(deep.ok()) << deep.status().message();
  const Status one = deep->check_budget(1);
  ASSERT_FALSE(one.ok());
  EXPECT_NE(one.message().find("too large to explain even one row"), std::string::npos)
      << one.message();
}

}  // namespace
}  // namespace forklift
