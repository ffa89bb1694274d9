#include "runtimes/worker_protocol.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>

namespace forklift::worker {
namespace {

Schema every_type() {
  Schema s;
  s.features = {{"x", ValueType::kFloat, 1, true},
                {"n", ValueType::kInt, 1, false},
                {"b", ValueType::kBool, 1, false},
                {"s", ValueType::kString, 1, false},
                {"v", ValueType::kFloatVector, 3, false}};
  s.output = OutputSpec{"out", ValueType::kFloatVector, 2};
  return s;
}

TEST(WorkerProtocol, RequestsRoundTripEveryType) {
  const Schema schema = every_type();
  Batch batch(schema);
  for (int r = 0; r < 3; ++r) {
    auto row = batch.add_row();
    row[0] = r == 1 ? std::nan("") : 1.5 * r;
    row[1] = std::int64_t{-7 * r};
    row[2] = r % 2 == 0;
    row[3] = std::string(static_cast<std::size_t>(r) * 3, 'z');  // "" included
    row[4] = std::vector<float>{1.0f * static_cast<float>(r), 2.0f, -3.5f};
  }
  Batch decoded(schema);
  ASSERT_TRUE(decode_request(encode_request(batch), decoded).ok());
  ASSERT_EQ(decoded.rows(), 3u);
  for (std::size_t r = 0; r < 3; ++r) {
    for (std::size_t f = 0; f < 5; ++f) {
      if (r == 1 && f == 0) {
        EXPECT_TRUE(std::isnan(std::get<double>(decoded.row(r)[f])));
      } else {
        EXPECT_EQ(decoded.row(r)[f], batch.row(r)[f]) << r << "," << f;
      }
    }
  }
  // Truncated or padded messages are refused, never read past their end.
  const std::string message = encode_request(batch);
  for (std::size_t cut : {std::size_t{0}, std::size_t{3}, message.size() / 2, message.size() - 1}) {
    Batch partial(schema);
    EXPECT_FALSE(decode_request(message.substr(0, cut), partial).ok()) << cut;
  }
  Batch padded(schema);
  EXPECT_FALSE(decode_request(message + "x", padded).ok());
}

TEST(WorkerProtocol, RequestsAreColumnsEachOfOneRunOfBytes) {
  const Schema schema = every_type();
  Batch batch(schema);
  for (int r = 0; r < 2; ++r) {
    auto row = batch.add_row();
    row[0] = 0.5 + r;
    row[1] = std::int64_t{10 + r};
    row[2] = r == 1;
    row[3] = std::string(static_cast<std::size_t>(r) + 1, 'a');
    row[4] = std::vector<float>{1, 2, 3.0f + static_cast<float>(r)};
  }
  const std::string message = encode_request(batch);
  std::size_t rows = 0;
  std::vector<ColumnBytes> columns;
  ASSERT_TRUE(split_request(message, schema, rows, columns).ok());
  ASSERT_EQ(rows, 2u);
  ASSERT_EQ(columns.size(), 5u);
  double x[2];
  ASSERT_EQ(columns[0].bytes.size(), sizeof x);  // both rows' x, one after the other
  std::memcpy(x, columns[0].bytes.data(), sizeof x);
  EXPECT_EQ(x[0], 0.5);
  EXPECT_EQ(x[1], 1.5);
  EXPECT_EQ(columns[2].bytes, std::string_view("\x00\x01", 2));
  EXPECT_EQ(columns[3].bytes, std::string_view("\x01\x00\x00\x00"
                                               "a"
                                               "\x02\x00\x00\x00"
                                               "aa",
                                               11));
  EXPECT_EQ(columns[4].bytes.size(), 2u * 3u * sizeof(float));
  // A bool byte other than 0 or 1 is refused (the worker copies the column as numpy bools).
  std::string bad = message;
  bad[4 + 16 + 16] = 2;  // the first row's b, after the rows and the x and n columns
  Batch none(schema);
  const Status s = decode_request(bad, none);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(none.rows(), 0u);  // nothing added from a refused request
}

TEST(WorkerProtocol, ResponsesCarryOutputsOrTheError) {
  const Schema schema = every_type();
  const std::vector<Value> outputs = {std::vector<float>{1, 2}, std::vector<float>{3, 4}};
  std::vector<Value> got;
  ASSERT_TRUE(
      decode_response(encode_response(schema.output, Status::Ok(), outputs), schema.output, 2, got)
          .ok());
  EXPECT_EQ(got, outputs);
  got.clear();
  const Status s = decode_response(encode_response(schema.output, Internal("ValueError: bad"), {}),
                                   schema.output, 2, got);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "ValueError: bad");
  EXPECT_TRUE(got.empty());
  EXPECT_FALSE(decode_response("", schema.output, 1, got).ok());
}

// A well-formed error is the worker's answer; anything malformed means the worker may be out of
// step with its requests (the pool then replaces it), and nothing of it is kept.
TEST(WorkerProtocol, MalformedAnswersAreToldApartFromErrors) {
  const Schema schema = every_type();
  const std::vector<Value> outputs = {std::vector<float>{1, 2}};
  const std::string good = encode_response(schema.output, Status::Ok(), outputs);
  std::vector<Value> got;
  bool malformed = true;
  ASSERT_TRUE(decode_response(good, schema.output, 1, got, &malformed).ok());
  EXPECT_FALSE(malformed);
  EXPECT_FALSE(decode_response(encode_response(schema.output, Internal("no"), {}), schema.output, 1,
                               got, &malformed)
                   .ok());
  EXPECT_FALSE(malformed);
  for (const std::string& bad : {good + "x", good.substr(0, good.size() - 1), std::string("\x07"),
                                 encode_response(schema.output, Internal("no"), {}) + "x"}) {
    got.clear();
    EXPECT_FALSE(decode_response(bad, schema.output, 1, got, &malformed).ok());
    EXPECT_TRUE(malformed);
    EXPECT_TRUE(got.empty());
  }
}

// Issue 14: a request's row count sized the batch before the bytes were checked: four bytes
// claiming 2^32-1 rows reserved 2^32 rows' worth of values.
TEST(WorkerProtocol, ARowCountTheBytesCannotHoldIsRefusedFirst) {
  const Schema schema = every_type();
  std::string message(4, '\xff');  // u32 rows = 4294967295, and nothing else
  Batch batch(schema);
  const Status s = decode_request(message, batch);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("more than its bytes hold"), std::string::npos) << s.message();
  // A schema whose rows take no bytes cannot justify any count.
  Schema empty;
  Batch none(empty);
  EXPECT_FALSE(decode_request(std::string("\x02\x00\x00\x00", 4), none).ok());
}

class FramePair : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0); }
  void TearDown() override {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  void send_raw(const std::string& bytes) {
    ASSERT_EQ(::write(fds[1], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  static std::string header(std::uint32_t size) {
    std::string h(4, '\0');
    std::memcpy(h.data(), &size, 4);
    return h;
  }
  int fds[2] = {-1, -1};
};

TEST_F(FramePair, AHeaderClaimingMoreThanTheLimitIsRefusedBeforeAllocating) {
  send_raw(header(0xffffffffu));
  std::string payload;
  EXPECT_EQ(read_frame(fds[0], payload), FrameRead::kTooLarge);
  EXPECT_LT(payload.capacity(), 1u << 20);
}

TEST_F(FramePair, MemoryGrowsWithTheBytesThatArriveNotWithTheHeader) {
  // 100 MiB claimed, 10 bytes sent, then the peer goes away.
  send_raw(header(100u << 20) + "0123456789");
  ::close(fds[1]);
  fds[1] = -1;
  std::string payload;
  EXPECT_EQ(read_frame(fds[0], payload), FrameRead::kClosed);
  EXPECT_LE(payload.capacity(), 2u << 20);
}

// Issue 14: a worker that sent half an answer held the serving thread for good, since only the
// first byte was waited for with a timeout.
TEST_F(FramePair, HalfAFrameTimesOutAtTheDeadline) {
  send_raw(header(100) + "only part of it");
  std::string payload;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  EXPECT_EQ(read_frame(fds[0], payload, kMaxFrameBytes, deadline), FrameRead::kTimedOut);
}

TEST_F(FramePair, WholeFramesRoundTrip) {
  ASSERT_TRUE(write_frame(fds[1], "hello"));
  ASSERT_TRUE(write_frame(fds[1], ""));
  std::string payload;
  EXPECT_EQ(read_frame(fds[0], payload), FrameRead::kOk);
  EXPECT_EQ(payload, "hello");
  EXPECT_EQ(read_frame(fds[0], payload), FrameRead::kOk);
  EXPECT_EQ(payload, "");
}

}  // namespace
}  // namespace forklift::worker
