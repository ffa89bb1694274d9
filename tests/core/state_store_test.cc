#include "core/state_store.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/model_registry.h"
#include "observability/log.h"
#include "test_util.h"

namespace forklift {
namespace {

using testing::TempDir;
using testing::write_file;
using testing::write_sum_version;

AuditEntry entry(std::string action) {
  return AuditEntry{now_iso8601(), "alice", "sum", std::move(action), "policy", "1", ""};
}

ModelControl control_with(std::vector<Route> routes, std::int64_t revision) {
  ModelControl c;
  c.deployment = Deployment::of(std::move(routes));
  c.revision = revision;
  return c;
}

TEST(ControlState, RoundTripsThroughJson) {
  ControlState state;
  ModelControl c = control_with({{1, 90}, {2, 10}}, 7);
  c.deployment.shadows.push_back(Shadow{3, 0.25, 0.02});
  c.history.push_back(Deployment::of({{1, 1}}));
  c.history.push_back(Deployment{});
  c.unloaded = true;
  state.models["eta"] = c;
  state.models["surge"] = ModelControl{};
  state.audit.push_back(
      AuditEntry{"2026-11-27T04:25:25Z", "bob \"b\"", "eta", "deploy", "policy", "1:90,2:10", ""});
  auto parsed = parse_control_state_json(control_state_to_json(state));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->models.at("eta"), c);
  EXPECT_EQ(parsed->models.at("surge"), ModelControl{});
  ASSERT_EQ(parsed->audit.size(), 1u);
  EXPECT_EQ(parsed->audit[0].actor, "bob \"b\"");
  EXPECT_EQ(parsed->audit[0].after, "1:90,2:10");
}

TEST(ControlState, ReadsTheFormatWrittenBeforeRevisions) {
  // State files from before revisions existed carry none: they read as revision 0.
  auto parsed = parse_control_state_json(
      R"({"format":1,"models":{"eta":{"deployment":{"routes":[{"version":1,"weight":1}],)"
      R"("shadows":[]},"history":[]}},"audit":[]})");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->models.at("eta").revision, 0);
  EXPECT_EQ(parsed->models.at("eta").deployment.describe(), "1");
}

TEST(ControlState, RejectsBrokenDocuments) {
  EXPECT_FALSE(parse_control_state_json("{\"models\": tru").ok());
  EXPECT_FALSE(
      parse_control_state_json(R"({"models":{"eta":{"deployment":{"routes":[{"version":"x"}]}}}})")
          .ok());
  EXPECT_FALSE(parse_model_control_json("[").ok());
}

TEST(MemoryStateStore, CommitsOnlyTheNextRevision) {
  MemoryStateStore store;
  ASSERT_TRUE(store.commit("sum", control_with({{1, 1}}, 1), entry("promote")).ok());
  // Based on a revision that is no longer the stored one: refused, nothing changes.
  const Status stale = store.commit("sum", control_with({{2, 1}}, 1), entry("promote"));
  EXPECT_EQ(stale.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.commit("sum", control_with({{2, 1}}, 3), entry("promote")).code(),
            StatusCode::kFailedPrecondition);
  auto state = store.load();
  EXPECT_EQ(state->models.at("sum").deployment.describe(), "1");
  ASSERT_TRUE(store.commit("sum", control_with({{2, 1}}, 2), entry("promote")).ok());
  EXPECT_EQ(store.load()->models.at("sum").revision, 2);
  EXPECT_EQ(store.audit(10)->size(), 2u);
  EXPECT_EQ(store.audit(1)->size(), 1u);
}

TEST(FileStateStore, SurvivesAReopenAndLeavesNoTemporaryFiles) {
  TempDir dir;
  const auto path = dir.path() / "state.json";
  {
    FileStateStore store(path);
    ASSERT_TRUE(store.load().ok());  // no file yet: empty
    ASSERT_TRUE(store.commit("sum", control_with({{1, 1}}, 1), entry("promote")).ok());
  }
  FileStateStore reopened(path);
  auto state = reopened.load();
  ASSERT_TRUE(state.ok()) << state.status().message();
  EXPECT_EQ(state->models.at("sum").deployment.describe(), "1");
  EXPECT_EQ(reopened.audit(10)->size(), 1u);
  ASSERT_TRUE(reopened.commit("sum", control_with({{2, 1}}, 2), entry("promote")).ok());
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1u);
}

TEST(FileStateStore, AChangeThatCannotBeWrittenIsNotMade) {
  TempDir dir;
  const auto path = dir.path() / "state.json";
  FileStateStore store(path);
  ASSERT_TRUE(store.commit("sum", control_with({{1, 1}}, 1), entry("promote")).ok());
  // Something in the way of the rename (as a full disk stops the write): even root fails.
  std::filesystem::remove(path);
  std::filesystem::create_directories(path / "in-the-way");
  const Status s = store.commit("sum", control_with({{2, 1}}, 2), entry("promote"));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("not made"), std::string::npos);
  EXPECT_EQ(store.audit(10)->size(), 1u);  // the refused change left no trace
  std::filesystem::remove_all(path);
  ASSERT_TRUE(store.commit("sum", control_with({{2, 1}}, 2), entry("promote")).ok());
}

TEST(FileStateStore, AnUnreadableFileIsAnErrorAndIsLeftAlone) {
  TempDir dir;
  const auto path = dir.path() / "state.json";
  write_file(path, "{\"models\": tru");
  FileStateStore store(path);
  EXPECT_EQ(store.load().status().code(), StatusCode::kInvalidArgument);
  std::ifstream in(path);
  std::string content((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(content, "{\"models\": tru");
}

// A store whose writes fail on demand (a full disk, a database that went away).
class FlakyStore : public MemoryStateStore {
 public:
  bool fail = false;

 protected:
  Status persist(const ControlState&) override {
    return fail ? Unavailable("the disk is full") : Status::Ok();
  }
};

class RegistryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::set_min_level(log::Level::kError);
    write_sum_version(repo.path(), "sum", 1, 0, 3);
    write_sum_version(repo.path(), "sum", 2, 10, 13);
    ASSERT_TRUE(registry.sync().ok());
  }
  void TearDown() override { log::set_min_level(log::Level::kInfo); }

  std::int64_t answering_version() {
    auto m = registry.snapshot()->resolve("sum", std::nullopt);
    EXPECT_TRUE(m.ok()) << m.status().message();
    return m.ok() ? (*m)->version : -1;
  }

  TempDir repo;
  MetricsRegistry metrics;
  std::shared_ptr<FlakyStore> store = std::make_shared<FlakyStore>();
  ModelRegistry registry{repo.path(), metrics, store};
};

TEST_F(RegistryStoreTest, AChangeTheStoreRefusesMovesNoTraffic) {
  store->fail = true;
  EXPECT_EQ(registry.promote("sum", 1, "alice").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(answering_version(), 2);
  EXPECT_EQ(registry.unload_model("sum", "alice").code(), StatusCode::kUnavailable);
  EXPECT_EQ(answering_version(), 2);
  // Version 1 was loaded only for the refused change: it left again.
  EXPECT_FALSE(registry.snapshot()->models.at("sum").serving.contains(1));
  store->fail = false;
  ASSERT_TRUE(registry.promote("sum", 1, "alice").ok());
  EXPECT_EQ(answering_version(), 1);
  EXPECT_EQ(registry.snapshot()->models.at("sum").control.revision, 1);
}

TEST_F(RegistryStoreTest, RemoteChangesApplyInRevisionOrderOnly) {
  ASSERT_TRUE(registry.apply_remote("sum", control_with({{1, 1}}, 3)).ok());
  EXPECT_EQ(answering_version(), 1);  // version 1 was loaded for it
  // An older or equal revision is one this registry already has (or has passed): ignored.
  ASSERT_TRUE(registry.apply_remote("sum", control_with({{2, 1}}, 3)).ok());
  ASSERT_TRUE(registry.apply_remote("sum", control_with({{2, 1}}, 2)).ok());
  EXPECT_EQ(answering_version(), 1);
  ModelControl unloaded = control_with({{1, 1}}, 4);
  unloaded.unloaded = true;
  ASSERT_TRUE(registry.apply_remote("sum", unloaded).ok());
  EXPECT_TRUE(registry.snapshot()->models.at("sum").serving.empty());
  ASSERT_TRUE(registry.apply_remote("sum", control_with({}, 5)).ok());
  EXPECT_EQ(answering_version(), 2);  // loaded again, under its version policy
  // The audit log is the origin's: applying a remote change writes none here.
  EXPECT_TRUE(registry.audit()->empty());
}

TEST_F(RegistryStoreTest, ARemoteChangeToAVersionMissingHereWaits) {
  const Status s = registry.apply_remote("sum", control_with({{3, 1}}, 1));
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(answering_version(), 2);                 // traffic stays where it was
  write_sum_version(repo.path(), "sum", 3, 20, 23);  // its files arrive
  ASSERT_TRUE(registry.apply_remote("sum", control_with({{3, 1}}, 1)).ok());
  EXPECT_EQ(answering_version(), 3);
}

TEST_F(RegistryStoreTest, LocalChangesAreBasedOnTheLatestRemoteRevision) {
  ASSERT_TRUE(registry.apply_remote("sum", control_with({{1, 1}}, 1)).ok());
  // The store has not seen revision 1 (another replica wrote it elsewhere), so this commit at
  // revision 2 is refused by it: exactly what a shared store does with a stale replica.
  EXPECT_EQ(registry.promote("sum", 2, "alice").status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store->put("sum", control_with({{1, 1}}, 1)).ok());
  ASSERT_TRUE(registry.promote("sum", 2, "alice").ok());
  EXPECT_EQ(registry.snapshot()->models.at("sum").control.revision, 2);
}

}  // namespace
}  // namespace forklift
