#include "common/file_util.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "test_util.h"

namespace forklift {
namespace {

namespace fs = std::filesystem;

std::string read_whole(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Issue 14, defect 6: the temporary file had a fixed name beside the target, so whoever could
// write that directory (the model repository's publishers, for the default state file) could
// plant a symlink there and have the server overwrite any file it may write.
TEST(WriteFileAtomically, DoesNotWriteThroughAPlantedSymlink) {
  testing::TempDir dir;
  testing::TempDir elsewhere;
  const fs::path victim = elsewhere.path() / "victim";
  testing::write_file(victim, "precious\n");
  const fs::path target = dir.path() / ".forklift-state.json";
  fs::create_symlink(victim, target.string() + ".tmp");
  ASSERT_TRUE(write_file_atomically(target, "{\"models\":{}}\n").ok());
  EXPECT_EQ(read_whole(victim), "precious\n");
  EXPECT_EQ(read_whole(target), "{\"models\":{}}\n");
  // The planted link is left alone, and no temporary file is left behind.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 2u);
}

TEST(WriteFileAtomically, ReplacesTheFileWhole) {
  testing::TempDir dir;
  const fs::path target = dir.path() / "state.json";
  ASSERT_TRUE(write_file_atomically(target, "one").ok());
  ASSERT_TRUE(write_file_atomically(target, "two").ok());
  EXPECT_EQ(read_whole(target), "two");
}

}  // namespace
}  // namespace forklift
