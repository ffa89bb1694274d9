#include "common/json_writer.h"

#include <gtest/gtest.h>

namespace forklift {
namespace {

std::string quoted(std::string_view s) {
  std::string out = "x";
  json::append_string(out, s);
  return out;
}

TEST(JsonWriter, EscapesWhatJsonRequiresAndCopiesTheRest) {
  EXPECT_EQ(quoted(""), "x\"\"");
  EXPECT_EQ(quoted("eta-2.v1"), "x\"eta-2.v1\"");
  EXPECT_EQ(quoted("a\"b\\c"), "x\"a\\\"b\\\\c\"");
  EXPECT_EQ(quoted("line\nnext\r\ttab"), "x\"line\\nnext\\r\\ttab\"");
  EXPECT_EQ(quoted(std::string_view("\x01z\x1f", 3)), "x\"\\u0001z\\u001f\"");
  EXPECT_EQ(quoted("\"\""), "x\"\\\"\\\"\"");
  EXPECT_EQ(quoted("caf\xc3\xa9 \xe2\x82\xac"), "x\"caf\xc3\xa9 \xe2\x82\xac\"");  // UTF-8 as is
}

}  // namespace
}  // namespace forklift
