#include "core/schema_compat.h"

#include <gtest/gtest.h>

namespace forklift {
namespace {

Schema schema_of(std::vector<FeatureSpec> features) {
  Schema s;
  s.features = std::move(features);
  s.output = {"y", ValueType::kFloat, 1};
  return s;
}

TEST(SchemaCompat, IdenticalAndReorderedSchemasAreCompatible) {
  const Schema a =
      schema_of({{"x", ValueType::kFloat, 1, false}, {"n", ValueType::kInt, 1, false}});
  const Schema b =
      schema_of({{"n", ValueType::kInt, 1, false}, {"x", ValueType::kFloat, 1, false}});
  EXPECT_TRUE(schema_breaks(a, a).empty());
  EXPECT_TRUE(schema_breaks(a, b).empty());
  // Relaxing a feature to allow missing values breaks nobody.
  const Schema relaxed =
      schema_of({{"x", ValueType::kFloat, 1, true}, {"n", ValueType::kInt, 1, false}});
  EXPECT_TRUE(schema_breaks(a, relaxed).empty());
}

TEST(SchemaCompat, EveryBreakIsListed) {
  const Schema now = schema_of({{"x", ValueType::kFloat, 1, true},
                                {"n", ValueType::kInt, 1, false},
                                {"v", ValueType::kFloatVector, 4, false},
                                {"gone", ValueType::kBool, 1, false}});
  const Schema next = schema_of({{"x", ValueType::kFloat, 1, false},
                                 {"n", ValueType::kFloat, 1, false},
                                 {"v", ValueType::kFloatVector, 8, false},
                                 {"extra", ValueType::kString, 1, false}});
  EXPECT_EQ(schema_breaks(now, next),
            (std::vector<std::string>{"no longer allows feature 'x' to be missing",
                                      "retypes feature 'n' (int -> float)",
                                      "retypes feature 'v' (float_vector[4] -> float_vector[8])",
                                      "drops feature 'gone'", "requires new feature 'extra'"}));
}

}  // namespace
}  // namespace forklift
