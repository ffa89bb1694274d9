#include "core/shadow_runner.h"

#include <gtest/gtest.h>

#include "core/model_registry.h"
#include "observability/log.h"
#include "test_util.h"

namespace forklift {
namespace {

using testing::TempDir;
using testing::write_sum_version;

TEST(CompareOutputs, NumbersVectorsAndStrings) {
  EXPECT_TRUE(compare_outputs(100.0, 100.5, 0.01).agree);
  const Comparison far = compare_outputs(100.0, 103.0, 0.01);
  EXPECT_FALSE(far.agree);
  EXPECT_DOUBLE_EQ(far.abs_diff, 3.0);
  EXPECT_DOUBLE_EQ(far.rel_diff, 0.03);
  EXPECT_TRUE(compare_outputs(0.0, 0.0, 0).agree);
  const Comparison vec =
      compare_outputs(std::vector<float>{1, 2}, std::vector<float>{1, 2.5f}, 0.01);
  EXPECT_FALSE(vec.agree);
  EXPECT_DOUBLE_EQ(vec.abs_diff, 0.5);
  EXPECT_TRUE(compare_outputs(std::string("a"), std::string("a"), 0).agree);
  EXPECT_FALSE(compare_outputs(std::string("a"), std::string("b"), 0).agree);
}

class ShadowRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::set_min_level(log::Level::kError);
    write_sum_version(repo.path(), "sum", 1, 0, 3, "all");
    write_sum_version(repo.path(), "sum", 2, 10, 13, "all");
    ASSERT_TRUE(registry.sync().ok());
  }
  void TearDown() override { log::set_min_level(log::Level::kInfo); }

  ShadowJob job(std::int64_t primary, std::int64_t shadow, double a) {
    auto snap = registry.snapshot();
    auto p = *snap->resolve("sum", primary);
    auto s = *snap->resolve("sum", shadow);
    Batch batch(p->manifest.schema);
    auto row = batch.add_row();
    row[0] = a;
    row[1] = 2.0;
    std::vector<Value> outputs;
    if (a < 0) {
      outputs.emplace_back(0.0);  // the test runtime throws for a < 0: only the shadow runs it
    } else {
      EXPECT_TRUE(p->model->predict(batch, outputs).ok());
    }
    return ShadowJob{p,    s,    Shadow{shadow, 1.0, 0.01}, std::move(batch), std::move(outputs),
                     "r1", false};
  }

  TempDir repo;
  MetricsRegistry metrics;
  ModelRegistry registry{repo.path(), metrics};
};

TEST_F(ShadowRunnerTest, CountsAgreementAndDisagreement) {
  ShadowRunner runner(metrics, 16);
  ASSERT_TRUE(runner.offer(job(1, 1, 1)));   // same version: agrees
  ASSERT_TRUE(runner.offer(job(1, 2, 1)));   // 3 vs 13: disagrees
  ASSERT_TRUE(runner.offer(job(1, 2, -1)));  // the shadow throws: an error
  runner.wait_idle();
  auto same = metrics.shadow("sum", 1, 1);
  auto other = metrics.shadow("sum", 1, 2);
  EXPECT_EQ(same->agree.load(), 1u);
  EXPECT_EQ(other->disagree.load(), 1u);
  EXPECT_EQ(other->errors.load(), 1u);
  std::string text;
  metrics.render(text);
  EXPECT_NE(text.find("forklift_shadow_rows_total{model_id=\"sum\",primary_version=\"1\","
                      "shadow_version=\"2\",result=\"disagree\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("forklift_shadow_abs_diff_bucket{model_id=\"sum\",primary_version=\"1\","
                      "shadow_version=\"2\",le=\"10\"} 1"),
            std::string::npos);
}

TEST_F(ShadowRunnerTest, AFullQueueDropsAndCounts) {
  ShadowRunner runner(metrics, 0);
  EXPECT_FALSE(runner.offer(job(1, 2, 1)));
  EXPECT_FALSE(runner.offer(job(1, 2, 1)));
  EXPECT_EQ(metrics.shadow("sum", 1, 2)->dropped.load(), 2u);
}

// Issue 14: bounded in bytes as well as in jobs.
TEST_F(ShadowRunnerTest, TheQueueIsBoundedInBytes) {
  // Room for a one-row job, not for one of 100 rows.
  ShadowRunner runner(metrics, 100, nullptr, sizeof(ShadowJob) + 8 * sizeof(Value));
  ShadowJob large = job(1, 2, 1);
  for (int i = 0; i < 99; ++i) {
    auto row = large.batch.add_row();
    row[0] = 1.0;
    row[1] = 2.0;
  }
  EXPECT_FALSE(runner.offer(std::move(large)));
  EXPECT_TRUE(runner.offer(job(1, 2, 1)));
  runner.wait_idle();
  auto counts = metrics.shadow("sum", 1, 2);
  EXPECT_EQ(counts->dropped.load(), 1u);
  EXPECT_EQ(counts->disagree.load(), 1u);
}

TEST_F(ShadowRunnerTest, DeploymentKeepsShadowVersionsLoaded) {
  ASSERT_TRUE(registry.set_deployment("sum", Deployment{{{1, 1}}, {{2, 0.5, 0.01}}}, "t").ok());
  const ModelState& m = registry.snapshot()->models.at("sum");
  EXPECT_EQ(m.control.deployment.describe(), "1 shadow 2@50%");
  EXPECT_TRUE(m.serving.contains(2));
  EXPECT_EQ((*registry.snapshot()->resolve("sum", std::nullopt))->version, 1);
}

}  // namespace
}  // namespace forklift
