#include <gtest/gtest.h>

#include <thread>

#include "core/version_loader.h"
#include "runtimes/builtin.h"
#include "test_util.h"

namespace forklift {
namespace {

const std::filesystem::path kEtaModelDir = std::filesystem::path(FORKLIFT_EXAMPLE_MODELS) / "eta";

class XGBoostRuntime : public ::testing::Test {
 protected:
  void SetUp() override { register_builtin_runtimes(); }
};

Batch random_eta_rows(const Schema& schema, std::size_t n, unsigned seed) {
  Batch batch(schema);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(0, 50);
  for (std::size_t r = 0; r < n; ++r) {
    for (auto& v : batch.add_row()) v = dist(rng);
  }
  return batch;
}

TEST_F(XGBoostRuntime, ExampleVersionsPassTheirSelfTests) {
  for (int v : {1, 2}) {
    LoadOutcome out = load_version(kEtaModelDir / std::to_string(v), "eta", v);
    ASSERT_TRUE(out.loaded) << out.status.message();
    EXPECT_EQ(out.selftest->cases, 24u);
    EXPECT_EQ(out.loaded->platform, "xgboost_json");
  }
}

TEST_F(XGBoostRuntime, BatchEqualsRowByRowAndConcurrentCallsAgree) {
  LoadOutcome out = load_version(kEtaModelDir / "2", "eta", 2);
  ASSERT_TRUE(out.loaded) << out.status.message();
  const Model& model = *out.loaded->model;
  const Schema& schema = out.loaded->manifest.schema;
  const Batch batch = random_eta_rows(schema, 200, 7);
  std::vector<Value> expected;
  ASSERT_TRUE(model.predict(batch, expected).ok());
  ASSERT_EQ(expected.size(), 200u);
  for (std::size_t r = 0; r < 200; r += 37) {
    Batch one(schema);
    auto row = one.add_row();
    for (std::size_t k = 0; k < row.size(); ++k) row[k] = batch.row(r)[k];
    std::vector<Value> single;
    ASSERT_TRUE(model.predict(one, single).ok());
    EXPECT_EQ(std::get<double>(single[0]), std::get<double>(expected[r]));
  }
  // Serving threads share one booster: every thread must see the same answers.
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        std::vector<Value> got;
        if (!model.predict(batch, got).ok() || got != expected) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_F(XGBoostRuntime, FeatureCountMismatchIsRejectedAtLoad) {
  testing::TempDir dir;
  const auto v1 = dir.path() / "eta" / "1";
  std::filesystem::create_directories(v1);
  std::filesystem::copy_file(kEtaModelDir / "1" / "model.json", v1 / "model.json");
  std::filesystem::copy_file(kEtaModelDir / "1" / "selftest.jsonl", v1 / "selftest.jsonl");
  testing::write_file(v1 / "model.yaml",
                      "runtime: xgboost\nartifact: model.json\nfeatures:\n"
                      "  - {name: a, type: float}\noutput: {name: y, type: float}\n");
  LoadOutcome out = load_version(v1, "eta", 1);
  ASSERT_FALSE(out.loaded) << "loaded";
  EXPECT_NE(out.status.message().find("expects 16 feature columns"), std::string::npos)
      << out.status.message();
}

TEST_F(XGBoostRuntime, CorruptArtifactIsRejected) {
  testing::TempDir dir;
  const auto v1 = dir.path() / "eta" / "1";
  std::filesystem::create_directories(v1);
  std::filesystem::copy_file(kEtaModelDir / "1" / "model.yaml", v1 / "model.yaml");
  testing::write_file(v1 / "model.json", "{\"learner\": trunc-secret-bytes");
  LoadOutcome out = load_version(v1, "eta", 1);
  ASSERT_FALSE(out.loaded) << "loaded";
  EXPECT_NE(out.status.message().find("XGBoost cannot load it as a model"), std::string::npos)
      << out.status.message();
  // XGBoost's own message quotes the file around the error: none of it may reach ours.
  EXPECT_EQ(out.status.message().find("secret"), std::string::npos) << out.status.message();
}

TEST_F(XGBoostRuntime, StringFeaturesAreRefused) {
  testing::TempDir dir;
  const auto v1 = dir.path() / "m" / "1";
  testing::write_file(v1 / "model.json", "{}");
  testing::write_file(v1 / "model.yaml",
                      "runtime: xgboost\nartifact: model.json\nfeatures:\n"
                      "  - {name: city, type: string}\noutput: {name: y, type: float}\n");
  LoadOutcome out = load_version(v1, "m", 1);
  ASSERT_FALSE(out.loaded) << "loaded";
  EXPECT_NE(out.status.message().find("cannot take string feature 'city'"), std::string::npos);
}

}  // namespace
}  // namespace forklift
