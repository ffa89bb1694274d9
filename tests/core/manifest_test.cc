#include "core/manifest.h"

#include <gtest/gtest.h>

namespace forklift {
namespace {

constexpr char kValid[] = R"(
runtime: xgboost
artifact: model.json
description: test
version_policy: all
features:
  - {name: distance, type: float, allow_missing: true}
  - {name: hour, type: int}
  - {name: raining, type: bool}
  - {name: city, type: string}
  - {name: embedding, type: float_vector, length: 4}
output: {name: eta, type: float}
runtime_options:
  nthread: 2
)";

Result<Manifest> parse_test_manifest(const std::string& text) {
  return parse_manifest_text(text, "m.yaml");
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  text.replace(text.find(from), from.size(), to);
  return text;
}

TEST(Manifest, ParsesEveryField) {
  auto m = parse_test_manifest(kValid);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->runtime, "xgboost");
  EXPECT_EQ(m->artifact, "model.json");
  ASSERT_EQ(m->schema.features.size(), 5u);
  EXPECT_EQ(m->schema.features[0].type, ValueType::kFloat);
  EXPECT_TRUE(m->schema.features[0].allow_missing);
  EXPECT_EQ(m->schema.features[1].type, ValueType::kInt);
  EXPECT_EQ(m->schema.features[2].type, ValueType::kBool);
  EXPECT_EQ(m->schema.features[3].type, ValueType::kString);
  EXPECT_EQ(m->schema.features[4].type, ValueType::kFloatVector);
  EXPECT_EQ(m->schema.features[4].length, 4u);
  EXPECT_EQ(m->schema.output.name, "eta");
  EXPECT_EQ(m->version_policy.kind, VersionPolicy::Kind::kAll);
  EXPECT_EQ(m->runtime_options.at("nthread"), "2");
  EXPECT_EQ(m->schema.index_of("hour"), 1);
  EXPECT_EQ(m->schema.index_of("nope"), -1);
}

TEST(Manifest, DefaultsToLatestPolicy) {
  auto m = parse_test_manifest(replace(kValid, "version_policy: all\n", ""));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->version_policy.kind, VersionPolicy::Kind::kLatest);
}

TEST(Manifest, SpecificVersions) {
  auto m = parse_test_manifest(
      replace(kValid, "version_policy: all", "version_policy: {specific: [1, 3]}"));
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->version_policy.kind, VersionPolicy::Kind::kSpecific);
  EXPECT_EQ(m->version_policy.versions, (std::vector<std::int64_t>{1, 3}));
}

struct BadCase {
  std::string from;
  std::string to;
  std::string message;  // must appear in the error
};

void PrintTo(const BadCase& c, std::ostream* os) {
  *os << c.message;
}

class ManifestErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ManifestErrors, NameTheFileAndField) {
  const BadCase& c = GetParam();
  auto m = parse_test_manifest(replace(kValid, c.from, c.to));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("m.yaml"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find(c.message), std::string::npos) << m.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Manifest, ManifestErrors,
    ::testing::Values(
        BadCase{"runtime: xgboost\n", "", "field 'runtime' is required"},
        BadCase{"artifact: model.json", "artifact: ../../etc/passwd", "field 'artifact'"},
        BadCase{"type: int}", "type: integer}", "'integer' is not a type"},
        BadCase{", length: 4}", "}", "field 'features[4].length' is required"},
        BadCase{"name: hour", "name: distance", "'distance' appears twice"},
        BadCase{"name: hour", "name: 'h our'", "must use only letters"},
        BadCase{"{name: hour, type: int}", "{name: hour, type: int, allow_missing: true}",
                "allow_missing' is only allowed"},
        BadCase{"output: {name: eta, type: float}\n", "", "field 'output' is required"},
        BadCase{"version_policy: all", "version_policy: newest", "'newest' is not a policy"},
        BadCase{"description: test", "descripton: test", "'descripton' is not a known field"},
        // A key that is not a plain name (it could be any file's content) is not quoted.
        BadCase{"description: test", "'root:x secret': test",
                "(a key of 13 characters)' is not a known field"},
        BadCase{"description: test", "new_versions: later", "must be promote or hold"},
        BadCase{"features:", "features: [\nfoo", "not valid YAML"},
        BadCase{"description: test", "dynamic_batching: {max_queue_delay_us: 5}",
                "'dynamic_batching.max_batch_size' is required"},
        BadCase{"description: test", "dynamic_batching: {max_batch_size: 0}",
                "'dynamic_batching.max_batch_size' must be an integer from 1"},
        BadCase{"description: test", "dynamic_batching: {max_batch_size: 8, delay: 5}",
                "'dynamic_batching.delay' is not a known field"},
        BadCase{"description: test", "dynamic_batching: {max_batch_size: 8, threads: many}",
                "'dynamic_batching.threads' must be an integer"}));

TEST(Manifest, DynamicBatchingIsOffUnlessAsked) {
  auto off = parse_test_manifest(kValid);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->batching.max_batch_size, 0u);
  auto on = parse_test_manifest(
      replace(kValid, "description: test",
              "dynamic_batching: {max_batch_size: 64, max_queue_delay_us: 200}"));
  ASSERT_TRUE(on.ok()) << on.status().message();
  EXPECT_EQ(on->batching.max_batch_size, 64u);
  EXPECT_EQ(on->batching.max_queue_delay_us, 200);
  EXPECT_EQ(on->batching.threads, 1u);
  EXPECT_EQ(on->batching.max_queue_size, 1024u);
}

TEST(Manifest, MissingFileIsNotFound) {
  auto m = parse_manifest("/nonexistent/model.yaml");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace forklift
