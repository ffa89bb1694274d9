#include "observability/timeseries.h"

#include <gtest/gtest.h>
#include <simdjson.h>

namespace forklift {
namespace {

TEST(BucketQuantile, InterpolatesWithinTheBucket) {
  const std::array<double, 3> bounds = {1, 2, 4};
  // 10 observations in (0,1], 10 in (1,2]: the median is at the top of the first bucket.
  EXPECT_DOUBLE_EQ(bucket_quantile({10, 10, 0, 0}, bounds, 0.5), 1.0);
  EXPECT_DOUBLE_EQ(bucket_quantile({10, 10, 0, 0}, bounds, 0.75), 1.5);
  EXPECT_DOUBLE_EQ(bucket_quantile({0, 0, 4, 0}, bounds, 0.5), 3.0);
  EXPECT_DOUBLE_EQ(bucket_quantile({0, 0, 0, 5}, bounds, 0.99), 4.0);  // +Inf: the last bound
  EXPECT_DOUBLE_EQ(bucket_quantile({0, 0, 0, 0}, bounds, 0.5), 0.0);   // nothing observed
}

TEST(TimeSeries, OnePointPerSecondFromTheCounters) {
  MetricsRegistry metrics;
  TimeSeries series(metrics, 3);
  auto v1 = metrics.version("eta", 1);
  auto v2 = metrics.version("eta", 2);
  series.sample(100);  // the baseline: nothing yet
  for (int i = 0; i < 8; ++i) v1->record(Outcome::kOk, 0.0002);
  v2->record(Outcome::kOk, 0.004);
  v2->record(Outcome::kServerError, 0.004);
  series.sample(101);
  series.sample(102);  // a quiet second
  for (int i = 0; i < 4; ++i) {
    v1->record(Outcome::kOk, 0.0002);
    series.sample(103 + i);  // capacity 3: the oldest points go
  }
  simdjson::dom::parser parser;
  const std::string json = series.to_json(600);
  simdjson::dom::element root = parser.parse(json);
  simdjson::dom::array points = root["models"]["eta"].get_array();
  ASSERT_EQ(points.size(), 3u);
  for (auto p : points) EXPECT_EQ(double(p["rps"]), 1.0);
  // The second with traffic from both versions, before it was dropped, summed them.
  TimeSeries fresh(metrics, 10);
  fresh.sample(200);
  for (int i = 0; i < 8; ++i) v1->record(Outcome::kOk, 0.0002);
  v2->record(Outcome::kClientError, 0.004);
  fresh.sample(201);
  simdjson::dom::element second = parser.parse(fresh.to_json(1))["models"]["eta"].at(0);
  EXPECT_EQ(int64_t(second["t"]), 201);
  EXPECT_EQ(double(second["rps"]), 9.0);
  EXPECT_EQ(double(second["errors"]), 1.0);
  EXPECT_GT(double(second["p50_ms"]), 0.1);  // in the 0.1-0.25 ms bucket
  EXPECT_LE(double(second["p50_ms"]), 0.25);
  EXPECT_GT(double(second["p99_ms"]), 2.5);  // the slow request, in the 2.5-5 ms bucket
  EXPECT_LE(double(second["p99_ms"]), 5.0);
}

}  // namespace
}  // namespace forklift
