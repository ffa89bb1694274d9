// A model repository written by someone careless or hostile: symlinks in, out, broken and in
// loops; FIFOs, devices and directories where files belong; unreadable and huge files. Each bad
// entry costs only itself, nothing outside the repository is read, and no error quotes a file.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/file_util.h"
#include "core/model_registry.h"
#include "core/repository.h"
#include "observability/log.h"
#include "test_util.h"

namespace forklift {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_file;
using testing::write_sum_version;

class HostileRepository : public ::testing::Test {
 protected:
  void SetUp() override {
    log::set_min_level(log::Level::kError);
    write_sum_version(repo.path(), "good", 1, 0, 3);
  }
  void TearDown() override { log::set_min_level(log::Level::kInfo); }

  // The registry's answer for `id`: its versions' states, "ready" or the failure message.
  std::string state_of(const std::string& id, std::int64_t version) {
    const auto snap = registry.snapshot();
    const auto m = snap->models.find(id);
    if (m == snap->models.end()) return "absent";
    const auto v = m->second.versions.find(version);
    if (v == m->second.versions.end()) return "no such version";
    if (v->second.state == VersionState::kReady) return "ready";
    return std::string(to_string(v->second.state)) + ": " + v->second.message;
  }
  bool good_serves() { return state_of("good", 1) == "ready"; }

  TempDir repo;
  TempDir outside;  // a directory beside the repository, with a "secret" in it
  MetricsRegistry metrics;
  ModelRegistry registry{repo.path(), metrics};
};

// Issue 14, defect 4: one dangling symlink failed the whole scan (zero models, /readyz 503).
TEST_F(HostileRepository, DanglingSymlinksCostOnlyThemselves) {
  fs::create_directory_symlink(repo.path() / "nowhere", repo.path() / "broken_model");
  write_sum_version(repo.path(), "half", 1, 0, 3);
  fs::create_directory_symlink(repo.path() / "half" / "9", repo.path() / "half" / "2");
  std::vector<std::string> skipped;
  auto scanned = scan_repository(repo.path(), &skipped);
  ASSERT_TRUE(scanned.ok()) << scanned.status().message();
  ASSERT_EQ(scanned->size(), 2u);
  EXPECT_EQ((*scanned)[0].model_id, "good");
  EXPECT_EQ((*scanned)[1].model_id, "half");
  EXPECT_EQ((*scanned)[1].versions, std::vector<std::int64_t>{1});
  ASSERT_EQ(skipped.size(), 2u);
  for (const auto& s : skipped) EXPECT_NE(s.find("cannot be resolved"), std::string::npos) << s;

  ASSERT_TRUE(registry.sync().ok());
  EXPECT_TRUE(good_serves());
  EXPECT_EQ(state_of("half", 1), "ready");
  EXPECT_TRUE(registry.snapshot()->ready());
}

TEST_F(HostileRepository, SymlinkLoopsAndLinksLeavingTheRepositoryAreSkipped) {
  fs::create_directory_symlink(repo.path() / "loop_b", repo.path() / "loop_a");
  fs::create_directory_symlink(repo.path() / "loop_a", repo.path() / "loop_b");
  write_sum_version(outside.path(), "elsewhere", 1, 0, 3);
  fs::create_directory_symlink(outside.path() / "elsewhere", repo.path() / "escaped");
  fs::create_directories(repo.path() / "half");
  fs::create_directory_symlink(outside.path() / "elsewhere" / "1", repo.path() / "half" / "1");
  std::vector<std::string> skipped;
  auto scanned = scan_repository(repo.path(), &skipped);
  ASSERT_TRUE(scanned.ok());
  std::vector<std::string> ids;
  for (const auto& m : *scanned) ids.push_back(m.model_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"good", "half"}));
  EXPECT_TRUE(scanned->back().versions.empty());
  std::string all;
  for (const auto& s : skipped) all += s + "\n";
  EXPECT_NE(all.find("loop_a"), std::string::npos) << all;
  EXPECT_NE(all.find("outside"), std::string::npos) << all;
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_TRUE(good_serves());
}

TEST_F(HostileRepository, SymlinksInsideTheRepositoryAreFollowed) {
  // A model directory and an artifact linked to another place inside the repository (shared
  // artifacts; Kubernetes volumes are built of such links) load as usual.
  fs::create_directory_symlink(repo.path() / "good", repo.path() / "alias");
  write_sum_version(repo.path(), "shared", 1, 0, 3);
  fs::remove(repo.path() / "shared" / "1" / "weights.txt");
  fs::create_symlink(repo.path() / "good" / "1" / "weights.txt",
                     repo.path() / "shared" / "1" / "weights.txt");
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_EQ(state_of("alias", 1), "ready");
  EXPECT_EQ(state_of("shared", 1), "ready");
}

// Issue 14, defect 5: an artifact that was a symlink to any readable file loaded, and a parse
// error quoted the file's first bytes.
TEST_F(HostileRepository, FilesOutsideTheRepositoryAreNeverRead) {
  write_file(outside.path() / "secret.txt", "hunter2-the-secret\n");
  for (const char* file : {"weights.txt", "model.yaml", "selftest.jsonl"}) {
    const std::string id = std::string("leak_") + fs::path(file).stem().string();
    write_sum_version(repo.path(), id, 1, 0, 3);
    const fs::path target = repo.path() / id / "1" / file;
    fs::remove(target);
    fs::create_symlink(outside.path() / "secret.txt", target);
  }
  ASSERT_TRUE(registry.sync().ok());
  for (const char* id : {"leak_weights", "leak_model", "leak_selftest"}) {
    const std::string state = state_of(id, 1);
    EXPECT_TRUE(state.starts_with("failed")) << id << ": " << state;
    EXPECT_NE(state.find("outside"), std::string::npos) << state;
    EXPECT_EQ(state.find("hunter2"), std::string::npos) << state;
  }
  EXPECT_TRUE(good_serves());
}

TEST_F(HostileRepository, SpecialFilesInPlaceOfFilesAreRefusedWithoutBlocking) {
  // A FIFO as model.yaml would block a plain open() forever; a device, a directory and a
  // socket are no better.
  write_sum_version(repo.path(), "fifo", 1, 0, 3);
  fs::remove(repo.path() / "fifo" / "1" / "model.yaml");
  ASSERT_EQ(::mkfifo((repo.path() / "fifo" / "1" / "model.yaml").c_str(), 0600), 0);
  write_sum_version(repo.path(), "fifo_artifact", 1, 0, 3);
  fs::remove(repo.path() / "fifo_artifact" / "1" / "weights.txt");
  ASSERT_EQ(::mkfifo((repo.path() / "fifo_artifact" / "1" / "weights.txt").c_str(), 0600), 0);
  write_sum_version(repo.path(), "dir_artifact", 1, 0, 3);
  fs::remove(repo.path() / "dir_artifact" / "1" / "weights.txt");
  fs::create_directories(repo.path() / "dir_artifact" / "1" / "weights.txt");
  write_sum_version(repo.path(), "device", 1, 0, 3);
  fs::remove(repo.path() / "device" / "1" / "weights.txt");
  fs::create_symlink("/dev/zero", repo.path() / "device" / "1" / "weights.txt");

  std::atomic<bool> done{false};
  std::thread watchdog([&] {
    for (int i = 0; i < 600 && !done; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    // A blocked open would hang the test: fail it loudly instead.
    if (!done) std::abort();
  });
  ASSERT_TRUE(registry.sync().ok());
  done = true;
  watchdog.join();
  EXPECT_NE(state_of("fifo", 1).find("not a regular file"), std::string::npos)
      << state_of("fifo", 1);
  EXPECT_NE(state_of("fifo_artifact", 1).find("not a regular file"), std::string::npos)
      << state_of("fifo_artifact", 1);
  EXPECT_NE(state_of("dir_artifact", 1).find("not a regular file"), std::string::npos)
      << state_of("dir_artifact", 1);
  // /dev/zero is outside the repository before it is anything else.
  EXPECT_TRUE(state_of("device", 1).starts_with("failed")) << state_of("device", 1);
  EXPECT_TRUE(good_serves());
}

TEST_F(HostileRepository, UnreadableAndHugeFilesCostOnlyTheirVersion) {
  write_sum_version(repo.path(), "huge", 1, 0, 3);
  {
    // Sparse: 2 MiB of model.yaml (the limit is 1 MiB) without writing it.
    const fs::path yaml = repo.path() / "huge" / "1" / "model.yaml";
    fs::resize_file(yaml, 2u << 20);
  }
  write_sum_version(repo.path(), "hidden", 1, 0, 3);
  fs::permissions(repo.path() / "hidden", fs::perms::none);
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_NE(state_of("huge", 1).find("larger than the limit"), std::string::npos)
      << state_of("huge", 1);
  if (::geteuid() != 0) {  // root reads whatever the permissions say
    EXPECT_NE(state_of("hidden", 1), "ready");
  }
  fs::permissions(repo.path() / "hidden", fs::perms::owner_all);
  EXPECT_TRUE(good_serves());
}

// A publisher replaces a version directory while it loads, first by another directory, then by
// a symlink to files outside the repository: the load finishes with what it resolved, and the
// next scan drops the version that now leads outside. Nothing crashes; other models serve.
TEST_F(HostileRepository, AVersionDirectorySwappedWhileLoadingCostsOnlyItself) {
  const std::string slow_yaml =
      "runtime: constant\nartifact: value.txt\nruntime_options: {delay_us: 1000000}\n"
      "features:\n  - {name: a, type: float}\noutput: {name: y, type: float}\n";
  write_file(repo.path() / "slow" / "1" / "model.yaml", slow_yaml);
  write_file(repo.path() / "slow" / "1" / "value.txt", "1\n");
  write_file(repo.path() / "slow" / "1" / "selftest.jsonl",
             "{\"features\": {\"a\": 1}, \"expected\": 1}\n");
  write_file(outside.path() / "evil" / "1" / "model.yaml", slow_yaml);
  write_file(outside.path() / "evil" / "1" / "value.txt", "666\n");
  write_file(outside.path() / "evil" / "1" / "selftest.jsonl",
             "{\"features\": {\"a\": 1}, \"expected\": 666}\n");
  std::thread loader([&] { EXPECT_TRUE(registry.sync().ok()); });
  // (The constant runtime's delay is in predict: the self-tests are what take the second.)
  while (state_of("slow", 1) != "loading: " && state_of("slow", 1) != "self-testing: ")
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  // Mid-load: the directory goes, a link to the outside takes its name.
  fs::rename(repo.path() / "slow" / "1", repo.path() / "slow" / "1.old");
  fs::create_directory_symlink(outside.path() / "evil" / "1", repo.path() / "slow" / "1");
  loader.join();
  const std::string first = state_of("slow", 1);
  EXPECT_TRUE(first == "ready" || first.starts_with("failed")) << first;
  if (first == "ready") {
    // Whatever it loaded, it was not the outside file.
    auto m = registry.snapshot()->resolve("slow", 1);
    ASSERT_TRUE(m.ok());
    Batch batch((*m)->manifest.schema);
    batch.add_row()[0] = 1.0;
    std::vector<Value> out;
    ASSERT_TRUE((*m)->model->predict(batch, out).ok());
    EXPECT_EQ(std::get<double>(out.at(0)), 1.0);
  }
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_EQ(state_of("slow", 1), "no such version");
  EXPECT_TRUE(good_serves());
}

// Found by the hostile review: any stray entry (a bare directory, a new model whose only version
// is a broken link or fails) took a ready replica out of its balancer until someone removed it.
TEST_F(HostileRepository, ANewModelThatCannotServeDoesNotUnreadyAServingReplica) {
  ASSERT_TRUE(registry.sync().ok());
  ASSERT_TRUE(registry.snapshot()->ready());
  fs::create_directories(repo.path() / "stray");
  fs::create_directories(repo.path() / "dangling");
  fs::create_directory_symlink(repo.path() / "nowhere", repo.path() / "dangling" / "1");
  write_file(repo.path() / "broken" / "1" / "model.yaml", "nonsense: [");
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_TRUE(registry.snapshot()->ready());
  EXPECT_TRUE(registry.snapshot()->unready_models().empty());
}

TEST_F(HostileRepository, AnArtifactLargerThanTheLimitIsRefused) {
  // Sparse: 3 GiB claimed on no disk (the limit is 2 GiB; runtimes read artifacts whole).
  write_sum_version(repo.path(), "sparse", 1, 0, 3);
  fs::resize_file(repo.path() / "sparse" / "1" / "weights.txt", std::uintmax_t{3} << 30);
  ASSERT_TRUE(registry.sync().ok());
  EXPECT_NE(state_of("sparse", 1).find("larger than the limit"), std::string::npos)
      << state_of("sparse", 1);
  EXPECT_TRUE(good_serves());
}

TEST(RealPathWithin, ContainmentIsByRealPathNotText) {
  TempDir root;
  TempDir other;
  write_file(root.path() / "a" / "f", "x");
  write_file(other.path() / "f", "x");
  EXPECT_TRUE(real_path_within(root.path(), root.path() / "a" / "f").ok());
  // ".." in the text that stays inside is fine; a sibling whose name starts with the root's is
  // outside.
  EXPECT_TRUE(real_path_within(root.path(), root.path() / "a" / ".." / "a" / "f").ok());
  const fs::path sibling = root.path().string() + "-sibling";
  write_file(sibling / "f", "x");
  EXPECT_FALSE(real_path_within(root.path(), sibling / "f").ok());
  fs::remove_all(sibling);
  fs::create_symlink(other.path() / "f", root.path() / "link");
  auto out = real_path_within(root.path(), root.path() / "link");
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("outside"), std::string::npos);
}

// Issue 14, defect 7: a thread that read a snapshot once (the loader at start-up) kept it, and
// every version in it, for the life of the server.
TEST_F(HostileRepository, AThreadThatReadOnceDoesNotPinRetiredVersions) {
  write_sum_version(repo.path(), "gone", 1, 0, 3);
  ASSERT_TRUE(registry.sync().ok());
  std::weak_ptr<const LoadedModel> gone;
  std::thread once([&] {
    auto m = registry.snapshot()->resolve("gone", 1);
    ASSERT_TRUE(m.ok());
    gone = *m;
  });
  once.join();
  {
    // This thread too reads once and never again.
    auto m = registry.snapshot()->resolve("gone", 1);
    ASSERT_TRUE(m.ok());
  }
  fs::remove_all(repo.path() / "gone");
  ASSERT_TRUE(registry.sync().ok());
  registry.collect_retired();
  EXPECT_TRUE(gone.expired()) << "a version that left the repository is still in memory";
  EXPECT_TRUE(good_serves());
}

// Issue 14, defect 12: freeing retired versions (after every admin call) waited for the lock that
// a load holds.
TEST_F(HostileRepository, FreeingRetiredVersionsDoesNotWaitForALoad) {
  // The constant runtime's delay_us runs in every predict, the self-test's included: a load of
  // about 3 s.
  write_file(repo.path() / "slow" / "1" / "model.yaml",
             "runtime: constant\nartifact: value.txt\nruntime_options: {delay_us: 3000000}\n"
             "features:\n  - {name: a, type: float}\noutput: {name: y, type: float}\n");
  write_file(repo.path() / "slow" / "1" / "value.txt", "1\n");
  write_file(repo.path() / "slow" / "1" / "selftest.jsonl",
             "{\"features\": {\"a\": 1}, \"expected\": 1}\n");
  std::atomic<bool> loaded{false};
  std::thread loader([&] {
    EXPECT_TRUE(registry.sync().ok());
    loaded = true;
  });
  // Wait until the slow version is loading (its state is published before the load).
  while (state_of("slow", 1) != "loading: " && state_of("slow", 1) != "self-testing: " && !loaded) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  registry.collect_retired();
  const bool finished_first = loaded.load();
  loader.join();
  EXPECT_FALSE(finished_first) << "collect_retired waited for the load to finish";
  EXPECT_EQ(state_of("slow", 1), "ready");
}

}  // namespace
}  // namespace forklift
