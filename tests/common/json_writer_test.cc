#include "common/json_writer.h"

#include <gtest/gtest.h>

#include <limits>

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
  EXPECT_EQ(quoted("\xf0\x9f\x9a\x95"), "x\"\xf0\x9f\x9a\x95\"");                  // 4 bytes
}

// Found by fuzz_http_request: a request path with a byte that is not UTF-8 made the 404's JSON
// body invalid. Such bytes become U+FFFD; well-formed sequences around them are kept.
TEST(JsonWriter, BytesThatAreNotUtf8BecomeTheReplacementCharacter) {
  EXPECT_EQ(quoted("/v\xe6/models"), "x\"/v\\ufffd/models\"");
  EXPECT_EQ(quoted("\x80"), "x\"\\ufffd\"");                        // a lone continuation byte
  EXPECT_EQ(quoted("a\xc3"), "x\"a\\ufffd\"");                      // truncated at the end
  EXPECT_EQ(quoted("\xc0\xaf"), "x\"\\ufffd\\ufffd\"");             // overlong '/'
  EXPECT_EQ(quoted("\xed\xa0\x80"), "x\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
  EXPECT_EQ(quoted("\xe2\x82\xac\xff\xc3\xa9"), "x\"\xe2\x82\xac\\ufffd\xc3\xa9\"");
}

// A double that came from a float prints as that float's shortest form; any other keeps its
// precision, and one beyond float's range (whose cast to float was undefined) prints as itself.
TEST(JsonWriter, DoublesPrintShortestWithoutCastingOutOfRange) {
  const auto printed = [](double d) {
    std::string out;
    json::append_double(out, d);
    return out;
  };
  EXPECT_EQ(printed(static_cast<double>(523.4567f)), "523.4567");
  EXPECT_EQ(printed(0.1), "0.1");
  EXPECT_EQ(printed(1e300), "1e+300");
  EXPECT_EQ(printed(-1e300), "-1e+300");
  EXPECT_EQ(printed(std::numeric_limits<double>::infinity()), "null");
}

}  // namespace
}  // namespace forklift
