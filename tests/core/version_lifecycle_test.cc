// The version lifecycle (core/version_state.h, version_manager.h) and the deployment rules that
// issue 15 fixed: every allowed transition, retrying a rejected version once its files change,
// an explicit reload, no version shadowing itself, no-op changes not recorded.
#include <gtest/gtest.h>
#include <utime.h>

#include <tuple>

#include "core/model_registry.h"
#include "core/version_files.h"
#include "core/version_state.h"
#include "observability/log.h"
#include "test_util.h"

namespace forklift {
namespace {

using testing::TempDir;
using testing::write_file;
using testing::write_sum_version;
using S = VersionState;

// Every transition the diagram in version_state.h draws, and no other.
TEST(VersionState, AllowsExactlyTheTransitionsOfTheDiagram) {
  const std::set<std::pair<S, S>> allowed = {
      {S::kLoading, S::kSelfTesting}, {S::kLoading, S::kFailed},  {S::kSelfTesting, S::kReady},
      {S::kSelfTesting, S::kFailed},  {S::kReady, S::kUnloading}, {S::kUnloading, S::kUnloaded},
      {S::kUnloading, S::kLoading},   {S::kFailed, S::kLoading},  {S::kUnloaded, S::kLoading},
  };
  const S all[] = {S::kLoading, S::kSelfTesting, S::kReady,
                   S::kFailed,  S::kUnloading,   S::kUnloaded};
  for (S from : all) {
    for (S to : all) {
      EXPECT_EQ(allowed_transition(from, to), allowed.contains({from, to}))
          << to_string(from) << " -> " << to_string(to);
    }
  }
}

TEST(VersionState, NamesEveryState) {
  EXPECT_EQ(to_string(S::kSelfTesting), "self-testing");
  EXPECT_EQ(to_string(S::kUnloading), "unloading");
}

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override { log::set_min_level(log::Level::kError); }
  void TearDown() override { log::set_min_level(log::Level::kInfo); }

  const ModelState& sum() { return snapshot->models.at("sum"); }
  void sync() {
    ASSERT_TRUE(registry.sync().ok());
    snapshot = registry.snapshot();
  }
  // Predicts a=1, b=2 with whatever the registry resolves.
  double predict(std::optional<std::int64_t> version = std::nullopt) {
    return testing::predict_sum(registry, version);
  }

  TempDir repo;
  MetricsRegistry metrics;
  ModelRegistry registry{repo.path(), metrics};
  std::shared_ptr<const RegistrySnapshot> snapshot;
};

TEST_F(LifecycleTest, ARejectedVersionIsRetriedOnceItsFilesChangeByContent) {
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  write_sum_version(repo.path(), "sum", 2, 10, 999);  // self-test expects 999: fails
  sync();
  ASSERT_EQ(sum().versions.at(2).state, S::kFailed);
  const double first_load = sum().versions.at(2).load_seconds;
  // Unchanged files: not tried again (the load time would differ if it were).
  sync();
  EXPECT_EQ(sum().versions.at(2).state, S::kFailed);
  EXPECT_EQ(sum().versions.at(2).load_seconds, first_load);
  // Touched (new mtime and ctime, same bytes): still not a change.
  const auto selftest = repo.path() / "sum" / "2" / "selftest.jsonl";
  ASSERT_EQ(::utime(selftest.c_str(), nullptr), 0);
  sync();
  EXPECT_EQ(sum().versions.at(2).load_seconds, first_load);
  // Fixed: tried again, and it serves.
  write_file(selftest, "{\"features\": {\"a\": 1, \"b\": 2}, \"expected\": 13}\n");
  sync();
  EXPECT_EQ(sum().versions.at(2).state, S::kReady);
  EXPECT_DOUBLE_EQ(predict(), 13);
}

TEST_F(LifecycleTest, AReloadLoadsAServingVersionsFilesAgain) {
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  sync();
  const auto before = *registry.snapshot()->resolve("sum", 1);
  // New weights (and self-test) in place: the loaded copy does not see them until a reload.
  write_file(repo.path() / "sum" / "1" / "weights.txt", "100");
  write_file(repo.path() / "sum" / "1" / "selftest.jsonl",
             "{\"features\": {\"a\": 1, \"b\": 2}, \"expected\": 103}\n");
  sync();
  EXPECT_DOUBLE_EQ(predict(), 3);
  ASSERT_TRUE(registry.reload_version("sum", 1, "alice").ok());
  EXPECT_DOUBLE_EQ(predict(), 103);
  EXPECT_NE(registry.snapshot()->resolve("sum", 1)->get(), before.get());
  EXPECT_EQ(registry.snapshot()->models.at("sum").versions.at(1).state, S::kReady);
}

TEST_F(LifecycleTest, AFailedReloadKeepsTheServingCopy) {
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  sync();
  write_file(repo.path() / "sum" / "1" / "weights.txt", "not a number");
  const Status s = registry.reload_version("sum", 1, "alice");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("the current copy keeps serving"), std::string::npos) << s.message();
  EXPECT_DOUBLE_EQ(predict(), 3);
  EXPECT_EQ(registry.snapshot()->models.at("sum").versions.at(1).state, S::kReady);
  EXPECT_EQ(registry.reload_version("sum", 7, "alice").code(), StatusCode::kNotFound);
  EXPECT_EQ(registry.reload_version("nope", 1, "alice").code(), StatusCode::kNotFound);
}

TEST_F(LifecycleTest, AReloadRetriesARejectedVersionWhateverItsFiles) {
  write_sum_version(repo.path(), "sum", 1, 0, 3, "all");
  write_sum_version(repo.path(), "sum", 2, 0, 999, "all");
  sync();
  ASSERT_EQ(sum().versions.at(2).state, S::kFailed);
  EXPECT_EQ(registry.reload_version("sum", 2, "alice").code(), StatusCode::kFailedPrecondition);
  write_file(repo.path() / "sum" / "2" / "selftest.jsonl",
             "{\"features\": {\"a\": 1, \"b\": 2}, \"expected\": 3}\n");
  EXPECT_TRUE(registry.reload_version("sum", 2, "alice").ok());
  EXPECT_DOUBLE_EQ(predict(2), 3);
}

// With the version policy choosing (no routes), the newest serving version takes the traffic:
// shadowing it would compare it with itself.
TEST_F(LifecycleTest, AVersionCannotShadowItself) {
  write_sum_version(repo.path(), "sum", 1, 0, 3, "all");
  write_sum_version(repo.path(), "sum", 2, 0, 3, "all");
  sync();
  Deployment shadow_newest;
  shadow_newest.shadows = {Shadow{2, 1.0, 0.01}};
  auto refused = registry.set_deployment("sum", shadow_newest, "alice");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("a version cannot shadow itself"), std::string::npos)
      << refused.status().message();
  // Forcing does not make it meaningful.
  EXPECT_FALSE(registry.set_deployment("sum", shadow_newest, "alice", "deploy", true).ok());
  // Routed elsewhere, it may shadow.
  Deployment pinned = Deployment::of({{1, 1}});
  pinned.shadows = {Shadow{2, 1.0, 0.01}};
  EXPECT_TRUE(registry.set_deployment("sum", pinned, "alice").ok());
  // And a promote of the shadow stops it shadowing.
  auto promoted = registry.promote("sum", 2, "alice");
  ASSERT_TRUE(promoted.ok());
  EXPECT_EQ(promoted->describe(), "2");
}

TEST_F(LifecycleTest, AChangeThatChangesNothingIsNotRecorded) {
  write_sum_version(repo.path(), "sum", 1, 0, 3, "all");
  write_sum_version(repo.path(), "sum", 2, 0, 3, "all");
  sync();
  ASSERT_TRUE(registry.set_deployment("sum", Deployment::of({{1, 1}}), "alice").ok());
  ASSERT_TRUE(registry.set_deployment("sum", Deployment::of({{2, 1}}), "alice").ok());
  ASSERT_TRUE(registry.set_deployment("sum", Deployment::of({{2, 1}}), "bob").ok());  // no-op
  ASSERT_TRUE(registry.unload_model("sum", "bob").ok());
  ASSERT_TRUE(registry.unload_model("sum", "bob").ok());  // no-op
  ASSERT_TRUE(registry.load_model("sum", "bob").ok());
  auto audit = registry.audit();
  ASSERT_TRUE(audit.ok());
  std::vector<std::tuple<std::string, std::string, std::string>> seen;
  for (const AuditEntry& e : *audit) seen.emplace_back(e.actor, e.action, e.after);
  const std::vector<std::tuple<std::string, std::string, std::string>> expected = {
      {"alice", "deploy", "1"},
      {"alice", "deploy", "2"},
      {"bob", "unload", "unloaded"},
      {"bob", "load", "2"}};
  EXPECT_EQ(seen, expected);
  // So a rollback undoes the last real change: back to version 1.
  auto back = registry.rollback("sum", "alice");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->describe(), "1");
}

TEST_F(LifecycleTest, UnloadingAModelUnloadsEachVersion) {
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  sync();
  ASSERT_TRUE(registry.unload_model("sum", "alice").ok());
  EXPECT_EQ(registry.snapshot()->models.at("sum").versions.at(1).state, S::kUnloading);
  snapshot.reset();  // the last holder of the old snapshot, and so of version 1
  // Freeing the copy is what makes it unloaded, repository polls or not.
  registry.collect_retired();
  const auto after = registry.snapshot();
  EXPECT_EQ(after->models.at("sum").versions.at(1).state, S::kUnloaded);
  EXPECT_EQ(after->models.at("sum").versions.at(1).message, "model unloaded through the admin API");
  ASSERT_TRUE(registry.load_model("sum", "alice").ok());
  EXPECT_EQ(registry.snapshot()->models.at("sum").versions.at(1).state, S::kReady);
}

// Found by the hostile review: a reload could change a serving version's schema under its
// callers, past the guard a promote has to pass.
TEST_F(LifecycleTest, AReloadThatWouldBreakCallersIsRefusedUnlessForcedAndIsAudited) {
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  sync();
  write_file(repo.path() / "sum" / "1" / "model.yaml",
             "runtime: test_sum\nartifact: weights.txt\nfeatures:\n  - {name: a, type: float}\n"
             "  - {name: b, type: float}\n  - {name: c, type: float}\n"
             "output: {name: total, type: float}\n");
  write_file(repo.path() / "sum" / "1" / "selftest.jsonl",
             "{\"features\": {\"a\": 1, \"b\": 2, \"c\": 0}, \"expected\": 3}\n");
  const Status refused = registry.reload_version("sum", 1, "alice");
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("requires new feature 'c'"), std::string::npos)
      << refused.message();
  EXPECT_DOUBLE_EQ(predict(), 3);  // the current copy, with its two features, still serves
  ASSERT_TRUE(registry.reload_version("sum", 1, "alice", true).ok());
  auto audit = registry.audit();
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);  // the refused attempt is not recorded
  EXPECT_EQ(audit->back().actor, "alice");
  EXPECT_EQ(audit->back().action, "reload");
  EXPECT_EQ(audit->back().after, "version 1");
}

// Also from the hostile review: the change detector must not follow links out of the
// repository (it read a 2 GiB file outside it under the registry's lock), and must follow
// directory links inside it, as the loader does.
TEST_F(LifecycleTest, ChangeDetectionStaysInsideTheRepositoryAndFollowsLinksInIt) {
  TempDir outside;
  write_file(outside.path() / "secret.bin", "outside");
  write_sum_version(repo.path(), "sum", 1, 0, 3);
  const auto dir = repo.path() / "sum" / "1";
  std::filesystem::create_symlink(outside.path() / "secret.bin", dir / "leak.bin");
  write_file(repo.path() / ".blobs" / "a" / "w.txt", "1");
  write_file(repo.path() / ".blobs" / "b" / "w.txt", "2");
  std::filesystem::create_directory_symlink(repo.path() / ".blobs" / "a", dir / "weights");
  const std::string signature = version_files_signature(dir);
  EXPECT_EQ(signature.find("leak.bin"), std::string::npos) << signature;
  EXPECT_NE(signature.find("weights/w.txt"), std::string::npos) << signature;
  const std::uint64_t content = version_files_content(dir);
  // Swapping the directory link to other content is a change.
  std::filesystem::remove(dir / "weights");
  std::filesystem::create_directory_symlink(repo.path() / ".blobs" / "b", dir / "weights");
  EXPECT_NE(version_files_content(dir), content);
  // Writing outside the repository is not.
  write_file(outside.path() / "secret.bin", "changed");
  std::filesystem::remove(dir / "weights");
  std::filesystem::create_directory_symlink(repo.path() / ".blobs" / "a", dir / "weights");
  EXPECT_EQ(version_files_content(dir), content);
}

}  // namespace
}  // namespace forklift
