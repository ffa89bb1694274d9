#include "store/postgres_event_sink.h"

#include <gtest/gtest.h>

#include <string>

namespace forklift {
namespace {

// Issue 14: lines waiting for an unreachable database are bounded in bytes as well as in count.
// (write() only queues; nothing connects until flush.)
TEST(PostgresEventSink, PendingLinesAreBoundedInBytes) {
  const std::string line =
      "{\"type\":\"prediction\",\"features\":\"" + std::string(1000, 'x') + "\"}\n";
  PostgresEventSink sink("host=127.0.0.1 port=1 connect_timeout=1", 1'000'000, 64 * 1024);
  std::string lines;
  for (int i = 0; i < 200; ++i) lines += line;
  sink.write(lines, 200);
  // About 64 lines of ~1 KB fit 64 KiB; the oldest of the 200 went first, counted.
  EXPECT_GE(sink.dropped(), 130u);
  EXPECT_LE(sink.dropped(), 140u);
}

TEST(PostgresEventSink, PendingLinesAreBoundedInCount) {
  PostgresEventSink sink("host=127.0.0.1 port=1 connect_timeout=1", 10);
  std::string lines;
  for (int i = 0; i < 25; ++i) lines += "{\"n\":" + std::to_string(i) + "}\n";
  sink.write(lines, 25);
  EXPECT_EQ(sink.dropped(), 15u);
}

}  // namespace
}  // namespace forklift
