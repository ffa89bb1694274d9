// Explanations (tree_shap.h) against XGBoost's own pred_contribs, on the example model and on
// models XGBoost trained (scripts/make_tree_test_models.py): within 1e-4 of every value (relative,
// for values above 1).
#include "runtimes/tree/tree_shap.h"

#include <gtest/gtest.h>
#include <xgboost/c_api.h>

#include <cmath>
#include <memory>
#include <random>

#include "runtimes/xgboost_library.h"

namespace forklift {
namespace {

const std::filesystem::path kModels(FORKLIFT_TEST_MODELS);
const std::filesystem::path kEta =
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
  expect_like_xgboost(kEta);
}

TEST(TreeShap, EqualsXGBoostContributionsOnTrainedModels) {
  for (const char* name : {"xgb_small_reg.json", "xgb_multiclass_softprob.json",
                           "xgb_multitarget.json", "xgb_categorical_reg.json"}) {
    expect_like_xgboost(kModels / name);
  }
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
  // Reorder so that node i's children are at left[i], right[i]: the layout above interleaves
  // splits (even) and leaves (odd), and the last split's right child is the final leaf.
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
    auto forest = tree::load_forest(kModels / "xgb_small_reg.json");
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
  auto eta = tree::load_forest(kEta);
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

  // 60 chains of depth 127: each row would take 60 x (2^2 + ... + 128^2) steps.
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
