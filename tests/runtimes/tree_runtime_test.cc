#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include "runtimes/load_direct.h"
#include "runtimes/tree/forest.h"
#include "test_util.h"

namespace forklift {
namespace {

using testing::load_direct;
using testing::TempDir;
using testing::write_file;

const std::filesystem::path kEtaDir = std::filesystem::path(FORKLIFT_EXAMPLE_MODELS) / "eta";

// eta's version directory with model.yaml switched to `runtime`.
std::filesystem::path eta_as(const TempDir& tmp, int version, const std::string& runtime) {
  const auto dir = tmp.path() / runtime / std::to_string(version);
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kEtaDir / std::to_string(version) / "model.json", dir / "model.json");
  std::ifstream in(kEtaDir / std::to_string(version) / "model.yaml");
  std::string yaml((std::istreambuf_iterator<char>(in)), {});
  yaml.replace(yaml.find("runtime: xgboost"), 16, "runtime: " + runtime);
  write_file(dir / "model.yaml", yaml);
  return dir;
}

TEST(TreeRuntime, EqualsXGBoostOnThousandsOfRowsWithMissingValues) {
  TempDir tmp;
  for (int version : {1, 2}) {
    auto native = load_direct(eta_as(tmp, version, "tree"));
    auto reference = load_direct(eta_as(tmp, version, "xgboost"));
    ASSERT_TRUE(native.loaded()) << native.status.message();
    ASSERT_TRUE(reference.loaded()) << reference.status.message();
    const Schema& schema = native.manifest->schema;
    std::mt19937 rng(version);
    std::uniform_real_distribution<double> value(-5, 60);
    std::uniform_real_distribution<double> coin(0, 1);
    Batch batch(schema);
    for (int r = 0; r < 3000; ++r) {
      auto row = batch.add_row();
      for (auto& v : row) {
        // Missing anywhere (the runtimes do not check allow_missing; the request parser does),
        // and some values exactly on round numbers near thresholds.
        const double c = coin(rng);
        v = c < 0.08 ? std::nan("") : c < 0.15 ? std::round(value(rng)) : value(rng);
      }
    }
    std::vector<Value> got, want;
    ASSERT_TRUE(native.model->predict(batch, got).ok());
    ASSERT_TRUE(reference.model->predict(batch, want).ok());
    ASSERT_EQ(got.size(), want.size());
    int mismatches = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      const double a = std::get<double>(got[i]), b = std::get<double>(want[i]);
      if (std::abs(a - b) > 1e-5 * std::max(1.0, std::abs(b))) {
        if (++mismatches < 5) ADD_FAILURE() << "row " << i << ": " << a << " vs XGBoost " << b;
      }
    }
    EXPECT_EQ(mismatches, 0) << "version " << version;
  }
}

// Two trees worked out by hand: f0 < 1 goes left (missing: left); f1 < 0.5 goes left (missing:
// right). binary:logistic with base_score 0.5 (margin 0).
constexpr const char* kSmall = R"({"learner": {
  "learner_model_param": {"base_score": "5E-1", "num_feature": "2", "num_class": "0",
                          "num_target": "1"},
  "objective": {"name": "binary:logistic"},
  "gradient_booster": {"name": "gbtree", "model": {"trees": [
    {"left_children": [1, -1, -1], "right_children": [2, -1, -1], "split_indices": [0, 0, 0],
     "split_conditions": [1.0, -0.5, 0.75], "default_left": [1, 0, 0], "split_type": [0, 0, 0]},
    {"left_children": [1, -1, 3, -1, -1], "right_children": [2, -1, 4, -1, -1],
     "split_indices": [1, 0, 0, 0, 0], "split_conditions": [0.5, 0.25, 2.0, 1.0, -1.0],
     "default_left": [0, 0, 1, 0, 0], "split_type": [0, 0, 0, 0, 0]}]}}}})";

double sigmoid(double m) {
  return 1 / (1 + std::exp(-m));
}

TEST(TreeForest, FollowsThresholdsAndDefaultDirectionsWorkedOutByHand) {
  auto forest = tree::parse_xgboost_json(kSmall, "small");
  ASSERT_TRUE(forest.ok()) << forest.status().message();
  const float nan = std::nanf("");
  const auto p = [&](float f0, float f1) {
    const float row[2] = {f0, f1};
    return forest->predict(row);
  };
  // Tree 1: f0 < 1 -> -0.5, else 0.75. Tree 2: f1 < 0.5 -> 0.25; else f0 < 2 -> 1.0, else -1.0.
  EXPECT_DOUBLE_EQ(p(0, 0), sigmoid(-0.5 + 0.25));
  EXPECT_DOUBLE_EQ(p(1, 0), sigmoid(0.75 + 0.25));  // 1 is not < 1: right
  EXPECT_DOUBLE_EQ(p(1.5, 1), sigmoid(0.75 + 1.0));
  EXPECT_DOUBLE_EQ(p(3, 1), sigmoid(0.75 - 1.0));
  EXPECT_DOUBLE_EQ(p(nan, 0), sigmoid(-0.5 + 0.25));  // missing f0: left in tree 1
  EXPECT_DOUBLE_EQ(p(nan, 1), sigmoid(-0.5 + 1.0));   // ... and left (to 1.0) in tree 2
  EXPECT_DOUBLE_EQ(p(5, nan), sigmoid(0.75 - 1.0));   // missing f1: right in tree 2
}

TEST(TreeForest, RefusesWhatItCannotEvaluateByName) {
  const auto refused = [](std::string json, const std::string& from, const std::string& to,
                          const std::string& message) {
    json.replace(json.find(from), from.size(), to);
    auto f = tree::parse_xgboost_json(json, "m.json");
    ASSERT_FALSE(f.ok()) << from;
    EXPECT_NE(f.status().message().find(message), std::string::npos) << f.status().message();
  };
  refused(kSmall, "binary:logistic", "multi:softprob", "objective 'multi:softprob'");
  refused(kSmall, R"("num_class": "0")", R"("num_class": "3")", "no complete tree_info");
  refused(kSmall, R"("split_type": [0, 0, 0]})", R"("split_type": [0, 0, 0],
          "tree_param": {"size_leaf_vector": "2"}})",
          "vector leaves");
  refused(kSmall, R"("split_type": [0, 0, 0])", R"("split_type": [1, 0, 0])",
          "categorical splits but no complete category lists");
  refused(kSmall, R"("name": "gbtree")", R"("name": "dart")", "only gbtree");
  refused(kSmall, R"("split_indices": [0, 0, 0])", R"("split_indices": [7, 0, 0])",
          "splits on feature 7 of 2");
  refused(kSmall, R"("right_children": [2, -1, -1])", R"("right_children": [9, -1, -1])",
          "does not follow its left one");
  refused(kSmall, R"("left_children": [1, -1, -1])", R"("left_children": [8, -1, -1])",
          "does not follow its left one");
  refused(kSmall, R"("left_children": [1, -1, -1], "right_children": [2, -1, -1])",
          R"("left_children": [7, -1, -1], "right_children": [8, -1, -1])", "broken child index");
  refused(kSmall, R"("left_children": [1, -1, -1])", R"("left_children": [1, -1])",
          "different lengths");
  // Found by fuzz_tree_models: a missing key threw from the parser instead of refusing.
  refused(kSmall, R"("learner_model_param")", R"("learner_model_parameters")",
          "no learner_model_param");
  // Found by fuzz_tree_models: a null (NaN) child index was cast to an int, undefined behaviour.
  // Indices and counts must be whole numbers within their type.
  refused(kSmall, R"("left_children": [1, -1, -1])", R"("left_children": [null, -1, -1])",
          "'left_children' holds a number out of range");
  refused(kSmall, R"("left_children": [1, -1, -1])", R"("left_children": [1.5, -1, -1])",
          "'left_children' holds a number out of range");
  refused(kSmall, R"("split_indices": [0, 0, 0])", R"("split_indices": [4294967296, 0, 0])",
          "'split_indices' holds a number out of range");
  refused(kSmall, R"("num_feature": "2")", R"("num_feature": null)", "num_feature is not a count");
  refused(kSmall, R"("num_feature": "2")", R"("num_feature": "-1")", "num_feature is not a count");
  refused(kSmall, R"("num_class": "0")", R"("num_class": "2.5")", "unsupported num_class");
  EXPECT_FALSE(tree::parse_xgboost_json("{\"learner\": [", "m.json").ok());
  EXPECT_FALSE(tree::parse_xgboost_json("{}", "m.json").ok());
}

// Issue 14, defect 13: a node's category bitset is sized by its largest category, so a 71 KB file
// naming category 2^24-1 on every categorical node took 674 MiB. The bitsets now share a budget
// set by the file's size.
TEST(TreeForest, CategorySetsAreBoundedByTheFileSize) {
  std::ifstream in(std::string(FORKLIFT_TEST_MODELS) + "/xgb_categorical_reg.json");
  std::stringstream text;
  text << in.rdbuf();
  const std::string model = text.str();
  ASSERT_TRUE(tree::parse_xgboost_json(model, "m.json").ok());
  std::size_t lists = 0;
  // Every category becomes 16777215 (2^24 - 1): 2 MiB per categorical node.
  std::string hostile;
  const std::regex list(R"("categories":\s*\[([^\]]*)\])");
  auto last = model.cbegin();
  for (std::sregex_iterator it(model.begin(), model.end(), list), end; it != end; ++it) {
    hostile.append(last, model.cbegin() + it->position());
    const std::string items = (*it)[1];
    const auto n = std::count(items.begin(), items.end(), ',') + 1;
    hostile += "\"categories\": [";
    for (long i = 0; i < n; ++i) hostile += i ? ", 16777215" : "16777215";
    hostile += "]";
    last = model.cbegin() + it->position() + it->length();
    ++lists;
  }
  ASSERT_GT(lists, 0u);
  hostile.append(last, model.cend());
  auto refused = tree::parse_xgboost_json(hostile, "m.json");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("more memory than a model file of this size"),
            std::string::npos)
      << refused.status().message();
}

// XGBoost models with categorical splits (scripts/make_tree_test_models.py), against XGBoost's own
// predictions on rows with missing, negative, fractional, unseen and huge categories.
TEST(TreeForest, EqualsXGBoostOnCategoricalSplits) {
  const std::filesystem::path dir(FORKLIFT_TEST_MODELS);
  for (const std::string name : {"xgb_categorical_reg", "xgb_categorical_binary"}) {
    auto forest = tree::load_forest(dir / (name + ".json"));
    ASSERT_TRUE(forest.ok()) << forest.status().message();
    EXPECT_TRUE(forest->has_special_nodes);
    simdjson::dom::parser parser;
    simdjson::dom::element cases;
    ASSERT_FALSE(parser.load((dir / (name + ".cases.json")).string()).get(cases));
    simdjson::dom::array rows = cases["rows"], predictions = cases["predictions"];
    ASSERT_EQ(rows.size(), predictions.size());
    ASSERT_GE(rows.size(), 1000u);
    int mismatches = 0;
    auto want = predictions.begin();
    for (simdjson::dom::array row : rows) {
      std::vector<float> x;
      for (auto v : row) x.push_back(v.is_null() ? NAN : static_cast<float>(double(v)));
      const double got = forest->predict(x.data()), expected = double(*want);
      ++want;
      if (std::abs(got - expected) > 1e-5 * std::max(1.0, std::abs(expected))) {
        if (++mismatches < 5) ADD_FAILURE() << name << ": " << got << " vs XGBoost " << expected;
      }
    }
    EXPECT_EQ(mismatches, 0) << name;
  }
}

TEST(TreeRuntime, ChecksTheManifestAgainstTheModel) {
  TempDir tmp;
  const auto dir = eta_as(tmp, 2, "tree");
  std::ifstream in(dir / "model.yaml");
  std::string yaml((std::istreambuf_iterator<char>(in)), {});
  const auto cut = yaml.find("  - {name: road_closures");
  ASSERT_NE(cut, std::string::npos);
  write_file(dir / "model.yaml", yaml.substr(0, cut) + yaml.substr(yaml.find('\n', cut) + 1));
  auto loaded = load_direct(dir);
  ASSERT_FALSE(loaded.loaded());
  EXPECT_NE(loaded.status.message().find("expects 16 feature columns"), std::string::npos)
      << loaded.status.message();
}

}  // namespace
}  // namespace forklift
