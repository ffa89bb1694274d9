#include "core/deployment.h"

#include <gtest/gtest.h>

#include <map>

namespace forklift {
namespace {

TEST(Deployment, SplitFollowsTheWeights) {
  const Deployment d = Deployment::of({{1, 90}, {2, 10}});
  std::map<std::int64_t, int> counts;
  for (int i = 0; i < 20000; ++i) ++counts[pick_version(d, "")];
  EXPECT_NEAR(counts[1] / 20000.0, 0.9, 0.02);
  EXPECT_NEAR(counts[2] / 20000.0, 0.1, 0.02);
}

TEST(Deployment, KeysAreStickyAndSpreadByWeight) {
  const Deployment d = Deployment::of({{1, 50}, {2, 50}});
  std::map<std::int64_t, int> counts;
  for (int rider = 0; rider < 10000; ++rider) {
    const std::string key = "rider-" + std::to_string(rider);
    const std::int64_t v = pick_version(d, key);
    for (int again = 0; again < 3; ++again) ASSERT_EQ(pick_version(d, key), v);
    ++counts[v];
  }
  EXPECT_NEAR(counts[1] / 10000.0, 0.5, 0.03);
}

TEST(Deployment, StickyAssignmentsArePinned) {
  // The hash is fixed (64-bit FNV-1a of the key, modulo the total weight), so replicas and
  // restarts agree. These are the assignments it gives today; changing the hash (or how the
  // draw maps onto the routes) would move users between the arms of running experiments, so a
  // failure here is a break of that promise, not a constant to update.
  const Deployment even = Deployment::of({{1, 50}, {2, 50}});
  EXPECT_EQ(pick_version(even, "rider-0"), 1);   // FNV-1a % 100 = 30
  EXPECT_EQ(pick_version(even, "rider-2"), 1);   // 8
  EXPECT_EQ(pick_version(even, "rider-42"), 2);  // 72
  EXPECT_EQ(pick_version(even, "alice"), 2);     // 83
  const Deployment three = Deployment::of({{1, 70}, {2, 20}, {3, 10}});
  EXPECT_EQ(pick_version(three, "rider-1"), 1);  // 41
  EXPECT_EQ(pick_version(three, "rider-7"), 2);  // 75
  EXPECT_EQ(pick_version(three, "bob"), 3);      // 92
}

TEST(Deployment, OneRouteTakesEverything) {
  EXPECT_EQ(pick_version(Deployment::of({{7, 1}}), "anyone"), 7);
}

TEST(Deployment, Describe) {
  EXPECT_EQ(Deployment{}.describe(), "policy");
  EXPECT_EQ((Deployment::of({{2, 100}})).describe(), "2");
  EXPECT_EQ((Deployment::of({{1, 90}, {2, 10}})).describe(), "1:90,2:10");
}

TEST(Deployment, JsonRoundTrip) {
  const Deployment d = Deployment::of({{1, 90}, {2, 10}});
  std::string json;
  append_deployment_json(json, d);
  EXPECT_EQ(json,
            R"({"routes":[{"version":1,"weight":90},{"version":2,"weight":10}],"shadows":[]})");
  auto back = parse_deployment_json(json);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, d);
}

TEST(Deployment, ShadowsRoundTripAndDescribe) {
  Deployment d{{{2, 1}}, {{3, 0.25, 0.05}}};
  EXPECT_EQ(d.describe(), "2 shadow 3@25%");
  std::string json;
  append_deployment_json(json, d);
  auto back = parse_deployment_json(json);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, d);
  auto defaults = parse_deployment_json(R"({"shadows": [{"version": 4}]})");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->shadows[0], (Shadow{4, 1.0, 0.01}));
  EXPECT_TRUE(defaults->empty());  // routing is still the version policy's
}

TEST(Deployment, InvalidShadowsAreRefused) {
  EXPECT_FALSE(parse_deployment_json(R"({"shadows": [{"version": 3, "sample_rate": 0}]})").ok());
  EXPECT_FALSE(parse_deployment_json(R"({"shadows": [{"version": 3, "sample_rate": 1.5}]})").ok());
  EXPECT_FALSE(parse_deployment_json(R"({"shadows": [{"sample_rate": 0.5}]})").ok());
  auto both = parse_deployment_json(
      R"({"routes": [{"version": 3, "weight": 1}], "shadows": [{"version": 3}]})");
  EXPECT_NE(both.status().message().find("cannot also be its shadow"), std::string::npos);
}

TEST(Deployment, InvalidOnesAreRefused) {
  EXPECT_FALSE(parse_deployment_json("{").ok());
  EXPECT_FALSE(parse_deployment_json(R"({"routes": [{"version": 1}]})").ok());
  EXPECT_FALSE(parse_deployment_json(R"({"routes": [{"version": 1, "weight": -1}]})").ok());
  EXPECT_FALSE(parse_deployment_json(R"({"route": []})").ok());
  auto zero = parse_deployment_json(R"({"routes": [{"version": 1, "weight": 0}]})");
  EXPECT_NE(zero.status().message().find("weight 0"), std::string::npos);
  auto twice = parse_deployment_json(
      R"({"routes": [{"version": 1, "weight": 1}, {"version": 1, "weight": 2}]})");
  EXPECT_NE(twice.status().message().find("appears twice"), std::string::npos);
  EXPECT_TRUE(parse_deployment_json(R"({"routes": []})").ok());
}

}  // namespace
}  // namespace forklift
