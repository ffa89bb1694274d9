#include "core/model_registry.h"

#include <gtest/gtest.h>

#include "observability/log.h"
#include "test_util.h"

namespace forklift {
namespace {

using testing::TempDir;
using testing::write_file;
using testing::write_sum_version;

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override { log::set_min_level(log::Level::kError); }
  void TearDown() override { log::set_min_level(log::Level::kInfo); }

  // Predicts a=1, b=2 with whatever the registry resolves.
  double predict(std::optional<std::int64_t> version = std::nullopt) {
    return testing::predict_sum(registry, version);
  }

  TempDir repo;
  MetricsRegistry metrics;
  ModelRegistry registry{repo.path(), metrics};
};

TEST_F(RegistryTest, LatestPolicyServesTheNewestPassingVersion) {
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  write_sum_version(repo.path(), "sum", 2, 10, 13);
  ASSERT_TRUE(registry.sync().ok());
  auto snap = registry.snapshot();
  EXPECT_TRUE(snap->ready());
  const ModelState& m = snap->models.at("sum");
  EXPECT_EQ(m.serving.size(), 1u);
  EXPECT_EQ(m.default_version()->version, 2);
  EXPECT_DOUBLE_EQ(predict(), 13);
  // Version 1 was never needed, so it was never loaded.
  EXPECT_FALSE(m.versions.contains(1));
}

TEST_F(RegistryTest, FailingSelfTestKeepsThePreviousVersion) {
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_DOUBLE_EQ(predict(), 3);
  write_sum_version(repo.path(), "sum", 2, 10, 999);  // wrong expectation
  ASSERT_TRUE(registry.sync().ok());
  auto snap = registry.snapshot();
  const ModelState& m = snap->models.at("sum");
  EXPECT_EQ(m.default_version()->version, 1);
  EXPECT_EQ(m.versions.at(2).state, VersionState::kFailed);
  EXPECT_NE(m.versions.at(2).message.find("self-tests failed"), std::string::npos);
  EXPECT_DOUBLE_EQ(predict(), 3);
  auto explicit_v2 = snap->resolve("sum", 2);
  ASSERT_FALSE(explicit_v2.ok());
  EXPECT_EQ(explicit_v2.status().code(), StatusCode::kNotFound);
  // The data plane names the state, not the reason (which can quote the version's files).
  EXPECT_NE(explicit_v2.status().message().find("is not serving (failed)"), std::string::npos)
      << explicit_v2.status().message();
  EXPECT_EQ(explicit_v2.status().message().find("self-tests"), std::string::npos);
}

TEST_F(RegistryTest, NewVersionSwapsInAndOldRequestsKeepTheirModel) {
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  ASSERT_TRUE(registry.sync().ok());
  auto held = *registry.snapshot()->resolve("sum", std::nullopt);  // an in-flight request
  write_sum_version(repo.path(), "sum", 2, 5, 8);
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_DOUBLE_EQ(predict(), 8);
  auto snap = registry.snapshot();
  // Unloading while the request that started before the swap holds it.
  EXPECT_EQ(snap->models.at("sum").versions.at(1).state, VersionState::kUnloading);
  EXPECT_EQ(held->version, 1);
  Batch batch(held->manifest.schema);
  auto row = batch.add_row();
  row[0] = 1.0;
  row[1] = 2.0;
  std::vector<Value> out;
  ASSERT_TRUE(held->model->predict(batch, out).ok());
  EXPECT_DOUBLE_EQ(std::get<double>(out[0]), 3);
  // Once it lets go and the retired copy is freed, the next sync sees it unloaded.
  held.reset();
  snap.reset();
  registry.collect_retired();
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_EQ(registry.snapshot()->models.at("sum").versions.at(1).state, VersionState::kUnloaded);
}

TEST_F(RegistryTest, AllPolicyServesEveryPassingVersion) {
  write_sum_version(repo.path(), "sum", 1, 0, 3, "all");
  write_sum_version(repo.path(), "sum", 2, 1, 4, "all");
  write_sum_version(repo.path(), "sum", 3, 2, 0, "all");  // fails its self-test
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_DOUBLE_EQ(predict(1), 3);
  EXPECT_DOUBLE_EQ(predict(2), 4);
  EXPECT_DOUBLE_EQ(predict(), 4);
  EXPECT_FALSE(registry.snapshot()->resolve("sum", 3).ok());
}

TEST_F(RegistryTest, SpecificPolicyServesOnlyTheListedVersions) {
  const std::string policy = "{specific: [1, 3]}";
  write_sum_version(repo.path(), "sum", 1, 0, 3, policy);
  write_sum_version(repo.path(), "sum", 2, 1, 4, policy);
  write_sum_version(repo.path(), "sum", 3, 2, 5, policy);
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_DOUBLE_EQ(predict(1), 3);
  EXPECT_DOUBLE_EQ(predict(3), 5);
  EXPECT_DOUBLE_EQ(predict(), 5);
  EXPECT_FALSE(registry.snapshot()->resolve("sum", 2).ok());
}

TEST_F(RegistryTest, BrokenManifestIsRejectedAndTheRestServe) {
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  write_file(repo.path() / "broken" / "1" / "model.yaml", "runtime: test_sum\nfeatures: [\n");
  write_file(repo.path() / "noartifact" / "1" / "model.yaml", testing::sum_manifest());
  ASSERT_TRUE(registry.sync().ok());
  auto snap = registry.snapshot();
  EXPECT_DOUBLE_EQ(predict(), 3);
  const auto& broken = snap->models.at("broken").versions.at(1);
  EXPECT_EQ(broken.state, VersionState::kFailed);
  EXPECT_NE(broken.message.find("broken/1/model.yaml"), std::string::npos) << broken.message;
  const auto& noartifact = snap->models.at("noartifact").versions.at(1);
  EXPECT_NE(noartifact.message.find("field 'artifact'"), std::string::npos) << noartifact.message;
  EXPECT_NE(noartifact.message.find("weights.txt"), std::string::npos);
  // Models that never had a good version are reported (above), not fatal: the replica serves
  // everything else, so it stays ready.
  EXPECT_TRUE(snap->ready());
  EXPECT_TRUE(snap->unready_models().empty());
}

TEST_F(RegistryTest, UnknownRuntimeNamesTheKnownOnes) {
  write_file(repo.path() / "m" / "1" / "model.yaml",
             "runtime: tensorflow\nartifact: a\nfeatures: [{name: a, type: float}]\n"
             "output: {name: y, type: float}\n");
  write_file(repo.path() / "m" / "1" / "a", "");
  ASSERT_TRUE(registry.sync().ok());
  const auto& st = registry.snapshot()->models.at("m").versions.at(1);
  EXPECT_NE(st.message.find("'tensorflow' is not a registered runtime"), std::string::npos);
  EXPECT_NE(st.message.find("test_sum"), std::string::npos);
}

TEST_F(RegistryTest, RemovedModelsAndVersionsDisappear) {
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  write_sum_version(repo.path(), "other", 1, 0, 3);
  ASSERT_TRUE(registry.sync().ok());
  std::filesystem::remove_all(repo.path() / "other");
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_FALSE(registry.snapshot()->models.contains("other"));
  auto r = registry.snapshot()->resolve("other", std::nullopt);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST_F(RegistryTest, StrayDirectoriesAreSkipped) {
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  std::filesystem::create_directories(repo.path() / "sum" / "latest");
  std::filesystem::create_directories(repo.path() / "sum" / "007");
  std::filesystem::create_directories(repo.path() / ".git");
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_TRUE(registry.snapshot()->ready());
  EXPECT_EQ(registry.snapshot()->models.size(), 1u);
}

TEST_F(RegistryTest, MissingRepositoryIsAnError) {
  MetricsRegistry m;
  ModelRegistry r("/nonexistent/repository", m);
  EXPECT_EQ(r.sync().code(), StatusCode::kNotFound);
  EXPECT_FALSE(r.snapshot()->ready());
}

TEST_F(RegistryTest, DeploymentPinsAnOlderVersionAndRollsBack) {
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  write_sum_version(repo.path(), "sum", 2, 10, 13);
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_DOUBLE_EQ(predict(), 13);
  // Version 1 was never loaded under `latest`; promoting it loads and self-tests it first.
  auto d = registry.set_deployment("sum", Deployment::of({{1, 1}}), "alice", "promote");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_DOUBLE_EQ(predict(), 3);
  // A later sync keeps the deployed version although the policy alone would not.
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_DOUBLE_EQ(predict(), 3);
  ASSERT_TRUE(registry.rollback("sum", "bob").ok());
  EXPECT_DOUBLE_EQ(predict(), 13);
  EXPECT_EQ(registry.rollback("sum", "bob").status().code(), StatusCode::kFailedPrecondition);
  const auto audit = registry.audit().value();
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[0].actor, "alice");
  EXPECT_EQ(audit[0].action, "promote");
  EXPECT_EQ(audit[0].before, "policy");
  EXPECT_EQ(audit[0].after, "1");
  EXPECT_EQ(audit[1].action, "rollback");
  EXPECT_EQ(audit[1].after, "policy");
}

TEST_F(RegistryTest, SplitsAreStickyThroughResolve) {
  write_sum_version(repo.path(), "sum", 1, 0, 3, "all");
  write_sum_version(repo.path(), "sum", 2, 10, 13, "all");
  ASSERT_TRUE(registry.sync().ok());
  ASSERT_TRUE(registry.set_deployment("sum", Deployment::of({{1, 50}, {2, 50}}), "t").ok());
  auto snap = registry.snapshot();
  int ones = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string key = "k" + std::to_string(i);
    const auto v = (*snap->resolve("sum", std::nullopt, key))->version;
    EXPECT_EQ((*snap->resolve("sum", std::nullopt, key))->version, v);
    ones += v == 1;
  }
  EXPECT_NEAR(ones / 2000.0, 0.5, 0.05);
  // An explicit version still wins over the split.
  EXPECT_EQ((*snap->resolve("sum", 2, "k1"))->version, 2);
}

TEST_F(RegistryTest, DeployingAFailingOrMissingVersionIsRefused) {
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  write_sum_version(repo.path(), "sum", 2, 10, 999);  // fails its self-test
  ASSERT_TRUE(registry.sync().ok());
  auto bad = registry.set_deployment("sum", Deployment::of({{2, 1}}), "t");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("self-tests failed"), std::string::npos);
  EXPECT_EQ(registry.set_deployment("sum", Deployment::of({{9, 1}}), "t").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(registry.set_deployment("nope", Deployment::of({{1, 1}}), "t").status().code(),
            StatusCode::kNotFound);
  EXPECT_DOUBLE_EQ(predict(), 3);
  EXPECT_TRUE(registry.audit()->empty());
}

TEST(RegistryState, DeploymentsSurviveARestart) {
  log::set_min_level(log::Level::kError);
  TempDir repo;
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  write_sum_version(repo.path(), "sum", 2, 10, 13);
  const auto state = repo.path() / ".forklift-state.json";
  {
    MetricsRegistry metrics;
    ModelRegistry first(repo.path(), metrics, std::make_shared<FileStateStore>(state));
    ASSERT_TRUE(first.sync().ok());
    ASSERT_TRUE(first.set_deployment("sum", Deployment::of({{1, 80}, {2, 20}}), "alice").ok());
  }
  MetricsRegistry metrics;
  ModelRegistry second(repo.path(), metrics, std::make_shared<FileStateStore>(state));
  ASSERT_TRUE(second.sync().ok());
  auto snap = second.snapshot();
  const ModelState& m = snap->models.at("sum");
  EXPECT_EQ(m.control.deployment.describe(), "1:80,2:20");
  EXPECT_EQ(m.serving.size(), 2u);  // both routed versions were loaded at start
  ASSERT_EQ(second.audit()->size(), 1u);
  EXPECT_EQ((*second.audit())[0].actor, "alice");
  ASSERT_TRUE(second.rollback("sum", "bob").ok());
  EXPECT_EQ(second.snapshot()->models.at("sum").control.deployment.describe(), "policy");
  log::set_min_level(log::Level::kInfo);
}

TEST(RegistryState, CorruptStateFileIsReportedAndIgnored) {
  log::set_min_level(log::Level::kError);
  TempDir repo;
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  write_file(repo.path() / ".forklift-state.json", "{\"models\": tru");
  MetricsRegistry metrics;
  // The report is an error line of the JSON log, on stdout.
  ::testing::internal::CaptureStdout();
  ModelRegistry r(repo.path(), metrics,
                  std::make_shared<FileStateStore>(repo.path() / ".forklift-state.json"));
  const bool synced = r.sync().ok();
  const std::string logged = ::testing::internal::GetCapturedStdout();
  log::set_min_level(log::Level::kInfo);
  ASSERT_TRUE(synced);
  // Ignored: the model serves by its version policy.
  EXPECT_TRUE(r.snapshot()->ready());
  EXPECT_EQ(r.snapshot()->models.at("sum").control.deployment.describe(), "policy");
  // Reported: the event, the file and why.
  EXPECT_NE(logged.find("\"level\":\"error\",\"event\":\"state_unreadable\""), std::string::npos)
      << logged;
  EXPECT_NE(logged.find(".forklift-state.json' is unreadable"), std::string::npos) << logged;
}

TEST_F(RegistryTest, BreakingSchemaIsRefusedUnlessForced) {
  write_sum_version(repo.path(), "sum", 1, 0, 3, "all");
  // Version 2 makes b an int and requires a new feature c: callers of version 1 would break.
  const auto v2 = repo.path() / "sum" / "2";
  write_file(v2 / "model.yaml",
             "runtime: test_sum\nartifact: weights.txt\nversion_policy: {specific: [1]}\n"
             "features:\n  - {name: a, type: float}\n  - {name: b, type: int}\n"
             "  - {name: c, type: float}\noutput: {name: total, type: float}\n");
  write_file(v2 / "weights.txt", "0");
  write_file(v2 / "selftest.jsonl",
             "{\"features\": {\"a\": 1, \"b\": 2, \"c\": 0}, \"expected\": 3}\n");
  ASSERT_TRUE(registry.sync().ok());
  auto refused = registry.set_deployment("sum", Deployment::of({{2, 1}}), "t", "promote");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(
      refused.status().message().find(
          "version 2 vs version 1 (serving now): retypes feature 'b' (float -> int), requires "
          "new feature 'c'"),
      std::string::npos)
      << refused.status().message();
  EXPECT_EQ(registry.snapshot()->models.at("sum").control.deployment.describe(), "policy");
  // Version 2 was loaded only to check it: default traffic must still go to version 1.
  EXPECT_EQ((*registry.snapshot()->resolve("sum", std::nullopt))->version, 1);
  auto forced = registry.set_deployment("sum", Deployment::of({{2, 1}}), "t", "promote", true);
  ASSERT_TRUE(forced.ok()) << forced.status().message();
  // Rolling back to what callers used before is always allowed.
  EXPECT_TRUE(registry.rollback("sum", "t").ok());
}

TEST_F(RegistryTest, HeldNewVersionsWaitForAPromote) {
  const auto hold = [&](int version, double offset, double expected) {
    write_sum_version(repo.path(), "sum", version, offset, expected);
    const auto manifest = repo.path() / "sum" / std::to_string(version) / "model.yaml";
    write_file(manifest, testing::sum_manifest() + "new_versions: hold\n");
  };
  hold(1, 0, 3);
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_DOUBLE_EQ(predict(), 3);  // the first version serves: there is nothing to hold to
  hold(2, 10, 13);
  ASSERT_TRUE(registry.sync().ok());
  auto snap = registry.snapshot();
  const ModelState& m = snap->models.at("sum");
  EXPECT_TRUE(m.serving.contains(2));  // loaded and self-tested...
  EXPECT_DOUBLE_EQ(predict(), 3);      // ...but traffic stays on version 1
  EXPECT_EQ(m.control.deployment.describe(), "1");
  ASSERT_EQ(registry.audit()->size(), 1u);
  EXPECT_EQ((*registry.audit())[0].action, "hold");
  ASSERT_TRUE(registry.sync().ok());  // a later scan changes nothing
  EXPECT_DOUBLE_EQ(predict(), 3);
  ASSERT_TRUE(registry.promote("sum", 2, "alice").ok());
  EXPECT_DOUBLE_EQ(predict(), 13);
}

TEST_F(RegistryTest, NewVersionsArePromotedByDefault) {
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  ASSERT_TRUE(registry.sync().ok());
  write_sum_version(repo.path(), "sum", 2, 10, 13);
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_DOUBLE_EQ(predict(), 13);
  EXPECT_TRUE(registry.audit()->empty());
}

}  // namespace
}  // namespace forklift
