#include "observability/event_sink.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/file_util.h"
#include "observability/event_log.h"
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

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(CutTornLastLine, CutsBackToTheLastNewline) {
  TempDir tmp;
  const auto path = tmp.path() / "a.jsonl";
  write_text(path, "{\"a\":1}\n{\"b\":2}\n{\"c\":");
  auto cut = cut_torn_last_line(path);
  ASSERT_TRUE(cut.ok()) << cut.status().message();
  EXPECT_EQ(*cut, 5u);
  EXPECT_EQ(read_all(path), "{\"a\":1}\n{\"b\":2}\n");
}

TEST(CutTornLastLine, LeavesWholeAndEmptyFilesAlone) {
  TempDir tmp;
  const auto whole = tmp.path() / "whole.jsonl";
  write_text(whole, "x\ny\n");
  EXPECT_EQ(*cut_torn_last_line(whole), 0u);
  EXPECT_EQ(read_all(whole), "x\ny\n");
  const auto empty = tmp.path() / "empty.jsonl";
  write_text(empty, "");
  EXPECT_EQ(*cut_torn_last_line(empty), 0u);
  EXPECT_FALSE(cut_torn_last_line(tmp.path() / "missing.jsonl").ok());
}

TEST(CutTornLastLine, FindsANewlineFarBackAndEmptiesAFileWithNone) {
  TempDir tmp;
  const auto far = tmp.path() / "far.jsonl";
  const std::string torn(200'000, 'q');  // longer than the block read backwards at a time
  write_text(far, "first\n" + torn);
  EXPECT_EQ(*cut_torn_last_line(far), torn.size());
  EXPECT_EQ(read_all(far), "first\n");
  const auto none = tmp.path() / "none.jsonl";
  write_text(none, torn);
  EXPECT_EQ(*cut_torn_last_line(none), torn.size());
  EXPECT_EQ(read_all(none), "");
}

TEST(FileEventSink, OpeningCutsATornLineLeftByAKilledWriterAndAppendsToANewFile) {
  TempDir tmp;
  const auto dir = tmp.path() / "events";
  std::filesystem::create_directories(dir);
  write_text(dir / "events-20261127T000000Z-1.jsonl", "{\"row\":1}\n{\"row\":2}\n{\"ro");
  write_text(dir / "notes.txt", "no newline");  // not an events file: untouched
  auto sink = FileEventSink::open(dir, 1 << 20, 10);
  ASSERT_TRUE(sink.ok()) << sink.status().message();
  EXPECT_EQ(read_all(dir / "events-20261127T000000Z-1.jsonl"), "{\"row\":1}\n{\"row\":2}\n");
  EXPECT_EQ(read_all(dir / "notes.txt"), "no newline");
  (*sink)->write("{\"row\":3}\n", 1);
  EXPECT_EQ((*sink)->written(), 1u);
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    files += e.path().extension() == ".jsonl";
  EXPECT_EQ(files, 2u);
}

// Issue 14: the event queue is bounded in bytes as well as in events: a few requests of a
// hundred thousand rows each must not sit in memory by the gigabyte while a sink is slow.
TEST(EventLog, AnEventLargerThanTheByteBoundIsDroppedAndCounted) {
  EventLogOptions options;
  options.queue_bytes = 1000 * sizeof(Value);
  EventLog log(options, {});
  Schema schema;
  schema.features = {{"x", ValueType::kFloat, 1, false}};
  PredictionEvent event{
      std::chrono::system_clock::now(), "r1", "m", 1, nullptr, Batch(schema), {}, 0};
  for (int i = 0; i < 5000; ++i) event.batch.add_row()[0] = 1.0;
  EXPECT_FALSE(log.offer(std::move(event)));
  EXPECT_EQ(log.dropped(), 1u);
}

}  // namespace
}  // namespace forklift
