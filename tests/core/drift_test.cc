// Drift (core/drift/): profiles read, written and built; bins; the PSI; the live window.
#include <gtest/gtest.h>

#include <cmath>

#include "core/drift/drift_window.h"
#include "core/drift/feature_profile.h"

namespace forklift {
namespace {

Schema two_features() {
  Schema s;
  s.features = {{"x", ValueType::kFloat, 1, true}, {"city", ValueType::kString, 1, false}};
  s.output.name = "y";
  return s;
}

Batch rows_of(const Schema& schema, const std::vector<std::pair<double, std::string>>& rows) {
  Batch b(schema);
  for (const auto& [x, city] : rows) {
    auto row = b.add_row();
    row[0] = x;
    row[1] = city;
  }
  return b;
}

TEST(FeatureProfile, BuildsQuantileBinsAndTopCategories) {
  const Schema schema = two_features();
  std::vector<std::pair<double, std::string>> data;
  for (int i = 0; i < 1000; ++i) {
    data.emplace_back(i, i % 4 == 0 ? "nyc" : "sf");
  }
  data.emplace_back(std::nan(""), "sf");
  const Batch b = rows_of(schema, data);
  const std::vector<Value> outputs(b.rows(), Value(2.0));
  const FeatureProfile p = build_feature_profile(b, outputs, 4, "ref");
  const Distribution& x = p.features.at("x");
  EXPECT_EQ(x.edges, (std::vector<double>{250, 500, 750}));
  for (double f : x.fractions) EXPECT_NEAR(f, 0.25, 1e-9);
  EXPECT_NEAR(x.missing_rate, 1.0 / 1001, 1e-12);
  const Distribution& city = p.features.at("city");
  EXPECT_EQ(city.categories, (std::vector<std::string>{"sf", "nyc"}));
  EXPECT_EQ(city.fractions.back(), 0);
  ASSERT_TRUE(p.output.has_value());
  EXPECT_TRUE(p.output->edges.empty() || p.output->edges.size() == 1);  // one value: one bin
}

TEST(FeatureProfile, JsonRoundTrips) {
  FeatureProfile p;
  p.rows = 10;
  p.source = "train.jsonl";
  p.features["x"] = {Distribution::Kind::kNumeric, 0.1, {1, 2}, {}, {0.2, 0.3, 0.5}};
  p.features["c"] = {Distribution::Kind::kCategorical, 0, {}, {"a", "b"}, {0.5, 0.4, 0.1}};
  p.output = Distribution{Distribution::Kind::kNumeric, 0, {0.5}, {}, {0.5, 0.5}};
  auto back = parse_feature_profile(feature_profile_to_json(p));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, p);
}

TEST(FeatureProfile, RefusesHostileFilesWithoutEchoingThem) {
  const std::string secret = "s3cr3t-value";
  const std::pair<std::string, std::string> cases[] = {
      {"{\"format\":1,\"rows\":1,\"features\":{\"x\":{\"kind\":\"numeric\",\"missing_rate\":0,"
       "\"edges\":[\"" +
           secret + "\"],\"fractions\":[1,0]}}}",
       "increasing finite numbers"},
      {"{\"format\":1,\"rows\":-1,\"features\":{}}", "'rows'"},
      {"{\"format\":1,\"rows\":1,\"features\":[]}", "'features' must be an object"},
      {"{\"format\":1,\"rows\":1,\"features\":{\"c\":{\"kind\":\"categorical\","
       "\"missing_rate\":0,\"categories\":[1],\"fractions\":[0.5,0.5]}}}",
       "each category must be a string"},
      {"{\"format\":1,\"rows\":1,\"features\":{\"x\":{\"kind\":\"numeric\",\"missing_rate\":0,"
       "\"edges\":[],\"fractions\":[2]}}}",
       "from 0 to 1"},
  };
  for (const auto& [json, words] : cases) {
    const auto p = parse_feature_profile(json);
    ASSERT_FALSE(p.ok()) << json;
    EXPECT_NE(p.status().message().find(words), std::string::npos) << p.status().message();
    EXPECT_EQ(p.status().message().find(secret), std::string::npos);
  }
  std::string many =
      "{\"format\":1,\"rows\":1,\"features\":{\"x\":{\"kind\":\"numeric\","
      "\"missing_rate\":0,\"edges\":[";
  for (int i = 0; i < 150; ++i) many += (i ? "," : "") + std::to_string(i);
  many += "],\"fractions\":[]}}}";
  EXPECT_FALSE(parse_feature_profile(many).ok());
  EXPECT_FALSE(parse_feature_profile(std::string(kMaxProfileBytes + 1, ' ')).ok());
}

TEST(FeatureProfile, RefusesFiguresThatCannotDescribeData) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"format":1,"rows":1,"features":{"x":{"kind":"numeric","missing_rate":0,"edges":[1],"fractions":[1,1]}}})",
       "add up to 1"},
      {R"({"format":1,"rows":1,"features":{"c":{"kind":"categorical","missing_rate":0,"categories":["a","a"],"fractions":[0.5,0.5,0]}}})",
       "appears twice"},
      {R"({"format":1,"rows":1,"features":{"x":{"kind":"numeric","missing_rate":0,"edges":[],"fractions":[1]},"x":{"kind":"numeric","missing_rate":0,"edges":[],"fractions":[1]}}})",
       "appears twice"},
  };
  for (const auto& [json, words] : cases) {
    const auto p = parse_feature_profile(json);
    ASSERT_FALSE(p.ok()) << json;
    EXPECT_NE(p.status().message().find(words), std::string::npos) << p.status().message();
  }
  // Every value missing: all fractions 0 is a fair description.
  EXPECT_TRUE(
      parse_feature_profile(
          R"({"format":1,"rows":1,"features":{"x":{"kind":"numeric","missing_rate":1,"edges":[],"fractions":[0]}}})")
          .ok());
}

TEST(DriftWindow, DoesNotWatchAFeatureProfiledAsTheWrongKind) {
  const Schema schema = two_features();
  auto profile = std::make_shared<FeatureProfile>();
  profile->features["x"] = {Distribution::Kind::kCategorical, 0, {}, {"a"}, {1, 0}};
  profile->features["city"] = {Distribution::Kind::kCategorical, 0, {}, {"sf"}, {1, 0}};
  DriftWindow window(profile, schema, 60'000);
  EXPECT_EQ(window.skipped(), (std::vector<std::string>{"x"}));
  window.observe(rows_of(schema, {{0.2, "sf"}}), {}, 0);
  ASSERT_EQ(window.read(0).features.size(), 1u);
  EXPECT_EQ(window.read(0).features[0].name, "city");
}

TEST(FeatureProfile, BinsValuesOnTheSameSideAsTheBuild) {
  const Distribution d{Distribution::Kind::kNumeric, 0, {1, 2}, {}, {0.3, 0.3, 0.4}};
  EXPECT_EQ(d.bin_of(Value(0.5)), 0u);
  EXPECT_EQ(d.bin_of(Value(1.0)), 1u);  // an edge belongs to the bin above it
  EXPECT_EQ(d.bin_of(Value(std::int64_t{5})), 2u);
  EXPECT_FALSE(d.bin_of(Value(std::nan(""))).has_value());
  EXPECT_FALSE(d.bin_of(Value(std::string("a"))).has_value());
  const Distribution c{Distribution::Kind::kCategorical, 0, {}, {"a", "true"}, {0.5, 0.4, 0.1}};
  EXPECT_EQ(c.bin_of(Value(std::string("a"))), 0u);
  EXPECT_EQ(c.bin_of(Value(true)), 1u);
  EXPECT_EQ(c.bin_of(Value(std::string("zz"))), 2u);  // other
}

TEST(FeatureProfile, PopulationStabilityIndex) {
  EXPECT_DOUBLE_EQ(population_stability_index({0.5, 0.5}, {50, 50}), 0);
  EXPECT_NEAR(population_stability_index({0.5, 0.5}, {75, 25}),
              (0.25 * std::log(1.5)) + (-0.25 * std::log(0.5)), 1e-12);
  EXPECT_TRUE(std::isfinite(population_stability_index({1, 0}, {0, 100})));  // floored
  EXPECT_EQ(population_stability_index({0.5, 0.5}, {0, 0}), 0);
}

TEST(DriftWindow, ComparesTheWindowWithTheProfileAndForgetsOldRows) {
  const Schema schema = two_features();
  auto profile = std::make_shared<FeatureProfile>();
  profile->features["x"] = {Distribution::Kind::kNumeric, 0, {0.5}, {}, {0.5, 0.5}};
  profile->features["unknown"] = {Distribution::Kind::kNumeric, 0, {}, {}, {1}};
  DriftWindow window(profile, schema, 12'000);  // buckets of a second
  EXPECT_EQ(window.read(0).rows, 0u);
  window.observe(rows_of(schema, {{0.2, "a"}, {0.7, "a"}}), {Value(1.0), Value(1.0)}, 0);
  DriftReading r = window.read(0);
  EXPECT_EQ(r.rows, 2u);
  ASSERT_EQ(r.features.size(), 1u);  // only features both the schema and the profile have
  EXPECT_EQ(r.features[0].name, "x");
  EXPECT_DOUBLE_EQ(r.features[0].psi, 0);
  EXPECT_FALSE(r.output_psi.has_value());
  window.observe(rows_of(schema, {{0.9, "a"}, {std::nan(""), "a"}}), {}, 5'000);
  r = window.read(5'000);
  EXPECT_EQ(r.rows, 4u);
  EXPECT_DOUBLE_EQ(r.features[0].missing_rate, 0.25);
  EXPECT_GT(r.features[0].psi, 0);
  r = window.read(13'500);  // the first second has slid out
  EXPECT_EQ(r.rows, 2u);
}

}  // namespace
}  // namespace forklift
