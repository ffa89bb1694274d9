// The tree runtime on LightGBM text models: a model file from LightGBM's own repository with the
// predictions LightGBM's test suite asserts for it, and small models whose predictions are worked
// out by hand from LightGBM's decision rules (see tests/data/lightgbm/README.md).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "runtimes/tree/forest.h"

namespace forklift {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
const std::filesystem::path kData = std::filesystem::path(FORKLIFT_TEST_DATA) / "lightgbm";

TEST(LightGBM, PredictsWhatLightGBMsOwnTestAssertsForItsModelFile) {
  auto forest = tree::load_forest(kData / "missing_value_handle_na.txt");
  ASSERT_TRUE(forest.ok()) << forest.status().message();
  const float x[] = {0, 1, 2, 3, 4, 5, 6, 7, kNaN};
  const double y[] = {1, 1, 1, 1, 0, 0, 0, 0, 1};  // test_engine.py::test_missing_value_handle_na
  for (std::size_t i = 0; i < std::size(x); ++i) {
    EXPECT_NEAR(forest->predict(&x[i]), y[i], 1e-7) << "x = " << x[i];
  }
}

// Three trees over (x0, x1, x2), objective binary with sigmoid scale 2:
//  tree 0: x0 <= 1.5 (missing None: NaN reads as 0) ? [x1 <= -1 (missing Zero, default left)
//          ? 0.1 : 0.2] : [x2 in {1, 3, 33} (categorical; a bitset of two words) ? 0.3 : 0.4]
//  tree 1: x0 <= 5 (missing NaN, default right) ? -0.5 : 0.25
//  tree 2: a single leaf, 0.05
constexpr char kHandMade[] = R"(tree
version=v4
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=2
objective=binary sigmoid:2
feature_names=x0 x1 x2
feature_infos=none none 1:3:33
tree_sizes=1 1 1

Tree=0
num_leaves=4
num_cat=1
split_feature=0 1 2
split_gain=1 1 1
threshold=1.5 -1 0
decision_type=2 6 9
left_child=1 -1 -3
right_child=2 -2 -4
leaf_value=0.1 0.2 0.3 0.4
leaf_weight=1 1 1 1
leaf_count=1 1 1 1
internal_value=0 0 0
internal_weight=0 0 0
internal_count=4 2 2
cat_boundaries=0 2
cat_threshold=10 2
is_linear=0
shrinkage=1


Tree=1
num_leaves=2
num_cat=0
split_feature=0
split_gain=1
threshold=5
decision_type=8
left_child=-1
right_child=-2
leaf_value=-0.5 0.25
leaf_weight=1 1
leaf_count=1 1
internal_value=0
internal_weight=0
internal_count=2
is_linear=0
shrinkage=1


Tree=2
num_leaves=1
num_cat=0
split_feature=
split_gain=
threshold=
decision_type=
left_child=
right_child=
leaf_value=0.05
leaf_weight=
leaf_count=
internal_value=
internal_weight=
internal_count=
is_linear=0
shrinkage=1


end of trees

feature_importances:
x0=2
)";

TEST(LightGBM, FollowsNumericCategoricalAndMissingValueRulesWorkedOutByHand) {
  auto forest = tree::parse_lightgbm_text(kHandMade, "hand.txt");
  ASSERT_TRUE(forest.ok()) << forest.status().message();
  EXPECT_EQ(forest->num_features, 3u);
  const auto p = [&](float x0, float x1, float x2) {
    const float row[] = {x0, x1, x2};
    return forest->predict(row);
  };
  const auto expect = [](double margin) { return 1.0 / (1.0 + std::exp(-2.0 * margin)); };
  // Numeric splits send x <= threshold left: equality included.
  EXPECT_NEAR(p(1, -2, 0), expect(0.1 - 0.5 + 0.05), 1e-7);
  EXPECT_NEAR(p(1.5f, 0.5f, 0), expect(0.2 - 0.5 + 0.05), 1e-7);
  EXPECT_NEAR(p(5, -2, 0), expect(0.4 - 0.5 + 0.05), 1e-7);
  EXPECT_NEAR(p(5.0001f, -2, 1), expect(0.3 + 0.25 + 0.05), 1e-7);
  // Missing type Zero: 0 and NaN are missing and go the default way (left), though 0 > -1.
  EXPECT_NEAR(p(1, 0, 0), expect(0.1 - 0.5 + 0.05), 1e-7);
  EXPECT_NEAR(p(1, kNaN, 0), expect(0.1 - 0.5 + 0.05), 1e-7);
  EXPECT_NEAR(p(1, 0.5f, 0), expect(0.2 - 0.5 + 0.05), 1e-7);
  // Missing type None: NaN reads as 0 (0 <= 1.5: left). Missing type NaN: default right.
  EXPECT_NEAR(p(kNaN, 0.5f, 0), expect(0.2 + 0.25 + 0.05), 1e-7);
  // Categories: in {1, 3, 33} left; fractional truncated; NaN, negative, unknown right.
  EXPECT_NEAR(p(2, 0, 3), expect(0.3 - 0.5 + 0.05), 1e-7);
  EXPECT_NEAR(p(2, 0, 33), expect(0.3 - 0.5 + 0.05), 1e-7);
  EXPECT_NEAR(p(2, 0, 3.7f), expect(0.3 - 0.5 + 0.05), 1e-7);
  EXPECT_NEAR(p(2, 0, 2), expect(0.4 - 0.5 + 0.05), 1e-7);
  EXPECT_NEAR(p(2, 0, kNaN), expect(0.4 - 0.5 + 0.05), 1e-7);
  EXPECT_NEAR(p(2, 0, -1), expect(0.4 - 0.5 + 0.05), 1e-7);
  EXPECT_NEAR(p(2, 0, 64), expect(0.4 - 0.5 + 0.05), 1e-7);
  EXPECT_NEAR(p(1e30f, 0, 34), expect(0.4 + 0.25 + 0.05), 1e-7);
}

TEST(LightGBM, ThresholdsBetweenFloatsKeepLessOrEqualExact) {
  // 0.1 is not a float: the float just below it goes left, the one just above right.
  std::string text = kHandMade;
  text.replace(text.find("threshold=5\n"), 12, "threshold=0.1\n");
  auto forest = tree::parse_lightgbm_text(text, "hand.txt");
  ASSERT_TRUE(forest.ok()) << forest.status().message();
  ASSERT_GT(static_cast<double>(0.1f), 0.1);  // 0.100000001490116...
  const float lo[] = {std::nextafter(0.1f, 0.0f), -2, 0};
  const float hi[] = {0.1f, -2, 0};
  const auto margin = [](double p) { return std::log(p / (1 - p)) / 2; };
  EXPECT_NEAR(margin(forest->predict(lo)), 0.1 - 0.5 + 0.05, 1e-7);
  EXPECT_NEAR(margin(forest->predict(hi)), 0.1 + 0.25 + 0.05, 1e-7);
}

TEST(LightGBM, ValuesBeyondFloatRangeBecomeInfinitiesNotUndefinedCasts) {
  // A threshold above every float sends every finite value left; one below every float, none.
  // A leaf beyond float's range is an infinity. (Both casts were undefined behaviour.)
  std::string text = kHandMade;
  text.replace(text.find("threshold=5\n"), 12, "threshold=1e300\n");
  text.replace(text.find("leaf_value=-0.5 0.25"), 20, "leaf_value=-1e300 0.25");
  auto forest = tree::parse_lightgbm_text(text, "hand.txt");
  ASSERT_TRUE(forest.ok()) << forest.status().message();
  const float big[] = {3e38f, -2, 0};
  EXPECT_EQ(forest->predict(big), 0.0);  // left, to -inf: sigmoid(-inf)
  text.replace(text.find("threshold=1e300\n"), 16, "threshold=-1e300\n");
  forest = tree::parse_lightgbm_text(text, "hand.txt");
  ASSERT_TRUE(forest.ok()) << forest.status().message();
  const float low[] = {-3e38f, -2, 0};
  EXPECT_GT(forest->predict(low), 0.0);  // right, to 0.25
}

TEST(LightGBM, AveragesTheTreesOfARandomForest) {
  constexpr char kForest[] = R"(tree
version=v4
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=0
objective=regression
average_output
feature_names=x

Tree=0
num_leaves=1
leaf_value=1

Tree=1
num_leaves=1
leaf_value=3

end of trees
)";
  auto forest = tree::parse_lightgbm_text(kForest, "rf.txt");
  ASSERT_TRUE(forest.ok()) << forest.status().message();
  const float x = 0;
  EXPECT_DOUBLE_EQ(forest->predict(&x), 2.0);
}

TEST(LightGBM, RefusesWhatItCannotEvaluateByName) {
  const auto refused = [](const std::string& from, const std::string& to,
                          const std::string& message) {
    std::string text = kHandMade;
    text.replace(text.find(from), from.size(), to);
    auto f = tree::parse_lightgbm_text(text, "m.txt");
    ASSERT_FALSE(f.ok()) << from;
    EXPECT_NE(f.status().message().find(message), std::string::npos) << f.status().message();
    EXPECT_NE(f.status().message().find("m.txt"), std::string::npos);
  };
  refused("num_class=1", "num_class=3", "several outputs");
  refused("objective=binary sigmoid:2", "objective=cross_entropy_lambda",
          "'cross_entropy_lambda' is not supported");
  refused("objective=binary sigmoid:2", "objective=regression sqrt", "reg_sqrt");
  refused("is_linear=0\nshrinkage=1\n\n\nTree=1", "is_linear=1\nshrinkage=1\n\n\nTree=1",
          "linear tree");
  refused("left_child=1 -1 -3", "left_child=1 -1 7", "broken child index");
  refused("split_feature=0 1 2", "split_feature=0 1 5", "splits on feature 5 of 3");
  refused("leaf_value=0.1 0.2 0.3 0.4", "leaf_value=0.1 0.2 0.3", "3 values for 4 leaves");
  refused("threshold=1.5 -1 0", "threshold=1.5 -1 4", "no category set");
  refused("threshold=1.5 -1 0", "threshold=1.5 one 0", "'threshold' holds something that is not");
  // A categorical node's threshold is an index: NaN or one past int64 was cast, undefined.
  refused("threshold=1.5 -1 0", "threshold=1.5 -1 nan", "no category set");
  refused("threshold=1.5 -1 0", "threshold=1.5 -1 1e300", "no category set");
  refused("tree\nversion", "hello\nversion", "not a LightGBM text model");
  // What the file holds is never quoted: it may be any file the artifact points at.
  auto f = tree::parse_lightgbm_text("root:secret-hash:0:0\n", "m.txt");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message().find("secret"), std::string::npos) << f.status().message();
}

}  // namespace
}  // namespace forklift
