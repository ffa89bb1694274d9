#include "core/features_json.h"

#include <gtest/gtest.h>

#include <cmath>

namespace forklift {
namespace {

Schema test_schema() {
  Schema s;
  s.features = {
      {"distance", ValueType::kFloat, 1, false}, {"traffic", ValueType::kFloat, 1, true},
      {"hour", ValueType::kInt, 1, false},       {"raining", ValueType::kBool, 1, false},
      {"city", ValueType::kString, 1, false},    {"embedding", ValueType::kFloatVector, 3, false}};
  s.output = {"eta", ValueType::kFloat, 1};
  return s;
}

constexpr char kGood[] =
    R"({"distance": 3.5, "traffic": null, "hour": 8, "raining": true, "city": "sf\n",
        "embedding": [1, 2.5, -3]})";

// Parses `json` as one feature object into a batch.
Status parse_features(const std::string& json, Batch& batch) {
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(json);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc)) return InvalidArgument("bad json");
  simdjson::ondemand::value v;
  if (doc.get_value().get(v)) return InvalidArgument("bad json");
  return parse_feature_object(v, batch.schema(), batch.add_row());
}

std::string error_for(const std::string& json) {
  Schema schema = test_schema();
  Batch batch(schema);
  Status s = parse_features(json, batch);
  EXPECT_FALSE(s.ok()) << json;
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  return s.message();
}

std::string with(const std::string& from, const std::string& to) {
  std::string text = kGood;
  text.replace(text.find(from), from.size(), to);
  return text;
}

TEST(FeaturesJson, ParsesEveryType) {
  Schema schema = test_schema();
  Batch batch(schema);
  ASSERT_TRUE(parse_features(kGood, batch).ok());
  ASSERT_EQ(batch.rows(), 1u);
  const RowView row = batch.row(0);
  EXPECT_DOUBLE_EQ(std::get<double>(row[0]), 3.5);
  EXPECT_TRUE(std::isnan(std::get<double>(row[1])));
  EXPECT_EQ(std::get<std::int64_t>(row[2]), 8);
  EXPECT_TRUE(std::get<bool>(row[3]));
  EXPECT_EQ(std::get<std::string>(row[4]), "sf\n");
  EXPECT_EQ(std::get<std::vector<float>>(row[5]), (std::vector<float>{1.0f, 2.5f, -3.0f}));
  EXPECT_DOUBLE_EQ(row.number("hour"), 8.0);
}

TEST(FeaturesJson, FeatureOrderDoesNotMatter) {
  Schema schema = test_schema();
  Batch batch(schema);
  ASSERT_TRUE(parse_features(R"({"embedding": [0,0,0], "city": "x", "raining": false, "hour": 1,
                        "traffic": 0.5, "distance": 1})",
                             batch)
                  .ok());
  EXPECT_DOUBLE_EQ(std::get<double>(batch.row(0)[1]), 0.5);
}

TEST(FeaturesJson, IntegersAreAcceptedAsFloats) {
  Schema schema = test_schema();
  Batch batch(schema);
  ASSERT_TRUE(parse_features(with("3.5", "3"), batch).ok());
  EXPECT_DOUBLE_EQ(std::get<double>(batch.row(0)[0]), 3.0);
}

TEST(FeaturesJson, ErrorsNameTheFeature) {
  EXPECT_EQ(error_for(with("\"distance\": 3.5,", "")), "missing feature 'distance'");
  EXPECT_EQ(error_for(with("\"distance\"", "\"distanse\"")), "unknown feature 'distanse'");
  EXPECT_EQ(error_for(with("3.5", "\"far\"")),
            "feature 'distance' must be a number (float), got a string");
  EXPECT_EQ(error_for(with("3.5", "null")),
            "feature 'distance' is null (missing), which its schema does not allow");
  EXPECT_EQ(error_for(with("8", "8.5")),
            "feature 'hour' must be an integer (int), got a number that is not a 64-bit integer");
  EXPECT_EQ(error_for(with("true", "1")),
            "feature 'raining' must be true or false (bool), got a number");
  EXPECT_EQ(error_for(with("\"sf\\n\"", "7")),
            "feature 'city' must be a string (string), got a number");
  EXPECT_EQ(error_for(with("[1, 2.5, -3]", "[1, 2]")),
            "feature 'embedding' must have 3 elements, got 2");
  EXPECT_EQ(error_for(with("[1, 2.5, -3]", "[1, 2, 3, 4]")),
            "feature 'embedding' must have 3 elements, got more");
  EXPECT_EQ(error_for(with("[1, 2.5, -3]", "[1, \"a\", 3]")),
            "feature 'embedding' must be an array of 3 numbers (float_vector), got a string");
  EXPECT_EQ(error_for(with("\"hour\": 8", "\"hour\": 8, \"hour\": 9")),
            "feature 'hour' appears twice");
  EXPECT_EQ(error_for("[1, 2]"), "features must be an object of name: value, got an array");
  EXPECT_NE(error_for(with("3.5", "1e999")).find("distance"), std::string::npos);
  EXPECT_EQ(error_for(with("3.5", "NaN")),
            "feature 'distance' is NaN or Infinity, which JSON cannot carry; send null for a "
            "missing value (this feature does not allow one)");
  EXPECT_EQ(error_for(with("null", "-Infinity")),
            "feature 'traffic' is NaN or Infinity, which JSON cannot carry; send null for a "
            "missing value");
}

TEST(FeaturesJson, InstancesMakeOneRowEach) {
  Schema schema;
  schema.features = {{"a", ValueType::kFloat, 1, false}};
  Batch batch(schema);
  simdjson::ondemand::parser parser;
  simdjson::padded_string json(std::string(R"([{"a": 1}, {"a": 2}, {"a": 3}])"));
  auto doc = parser.iterate(json);
  ASSERT_TRUE(parse_instances(doc.get_value().value(), batch).ok());
  ASSERT_EQ(batch.rows(), 3u);
  EXPECT_DOUBLE_EQ(std::get<double>(batch.row(2)[0]), 3.0);
}

TEST(FeaturesJson, InstanceErrorsSayWhichRow) {
  Schema schema;
  schema.features = {{"a", ValueType::kFloat, 1, false}};
  Batch batch(schema);
  simdjson::ondemand::parser parser;
  simdjson::padded_string json(std::string(R"([{"a": 1}, {"b": 2}])"));
  auto doc = parser.iterate(json);
  Status s = parse_instances(doc.get_value().value(), batch);
  EXPECT_EQ(s.message(), "instances[1]: unknown feature 'b'");
  simdjson::padded_string empty(std::string("[]"));
  Batch batch2(schema);
  auto doc2 = parser.iterate(empty);
  EXPECT_EQ(parse_instances(doc2.get_value().value(), batch2).message(),
            "instances must not be empty");
}

}  // namespace
}  // namespace forklift

namespace forklift {
namespace {

// Wide schemas (beyond the 256 features the parser tracks on the stack) still find duplicates
// and missing features, in any order.
TEST(FeaturesJson, WideSchemasCatchDuplicatesAndMissingFeatures) {
  for (const std::size_t width : {std::size_t{64}, std::size_t{300}}) {
    Schema schema;
    for (std::size_t i = 0; i < width; ++i) {
      schema.features.push_back({"f" + std::to_string(i), ValueType::kFloat, 1, false});
    }
    schema.output = {"y", ValueType::kFloat, 1};
    const auto object = [&](std::size_t skip, std::size_t twice) {
      std::string json = "{";
      for (std::size_t k = 0; k < width; ++k) {
        const std::size_t i = width - 1 - k;  // reverse order
        if (i == skip) continue;
        json += "\"f" + std::to_string(i) + "\": " + std::to_string(i) + ",";
        if (i == twice) json += "\"f" + std::to_string(i) + "\": 0,";
      }
      json.back() = '}';
      return json;
    };
    Batch batch(schema);
    ASSERT_TRUE(parse_features(object(width, width), batch).ok()) << width;
    EXPECT_EQ(std::get<double>(batch.row(0)[width - 1]), static_cast<double>(width - 1));
    Status dup = parse_features(object(width, width - 3), batch);
    EXPECT_NE(dup.message().find("'f" + std::to_string(width - 3) + "' appears twice"),
              std::string::npos)
        << dup.message();
    Status missing = parse_features(object(width - 2, width), batch);
    EXPECT_NE(missing.message().find("missing feature 'f" + std::to_string(width - 2) + "'"),
              std::string::npos)
        << missing.message();
  }
}

}  // namespace
}  // namespace forklift
