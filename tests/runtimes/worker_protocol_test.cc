#include "runtimes/worker_protocol.h"

#include <gtest/gtest.h>

#include <cmath>

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

}  // namespace
}  // namespace forklift::worker
