#include "observability/event_sink.h"

#include <gtest/gtest.h>

#include <fstream>

#include "test_util.h"

namespace forklift {
namespace {

using testing::TempDir;

TEST(FileEventSink, ChunksLargerThanAFileAreSplitAtLineEnds) {
  TempDir tmp;
  auto sink = FileEventSink::open(tmp.path() / "events", 1000, 100);
  ASSERT_TRUE(sink.ok()) << sink.status().message();
  std::string chunk;
  for (int i = 0; i < 95; ++i) chunk += std::string(99, static_cast<char>('a' + i % 26)) + "\n";
  (*sink)->write(chunk, 95);  // 9,500 bytes: ten files of at most 1,000 bytes
  (*sink)->write(std::string(1500, 'z') + "\n", 1);  // one line longer than a file: its own
  (*sink)->flush(true);
  EXPECT_EQ((*sink)->written(), 96u);
  std::size_t files = 0, lines = 0, bytes = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp.path() / "events")) {
    ++files;
    const auto size = std::filesystem::file_size(e.path());
    bytes += size;
    std::ifstream in(e.path());
    std::string content((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(content.back(), '\n');  // never a torn line
    lines += static_cast<std::size_t>(std::count(content.begin(), content.end(), '\n'));
    if (content.size() < 1500) {
      EXPECT_LE(size, 1000u) << e.path();
    }
  }
  EXPECT_EQ(lines, 96u);
  EXPECT_EQ(bytes, 9500u + 1501u);
  EXPECT_EQ(files, 11u);
}

}  // namespace
}  // namespace forklift
