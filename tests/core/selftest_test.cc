#include "core/selftest.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace forklift {
namespace {

using testing::TempDir;
using testing::write_file;

// Output = 2 * x; throws when x is 13.
class DoubleModel final : public Model {
 public:
  Status predict(const Batch& batch, std::vector<Value>& out) const override {
    for (std::size_t i = 0; i < batch.rows(); ++i) {
      const double x = batch.row(i).number("x");
      if (x == 13) throw std::runtime_error("unlucky");
      out.emplace_back(2 * x);
    }
    return Status::Ok();
  }
};

Schema selftest_schema() {
  Schema s;
  s.features = {{"x", ValueType::kFloat, 1, false}};
  s.output = {"y", ValueType::kFloat, 1};
  return s;
}

SelfTestReport run(const std::string& lines) {
  TempDir dir;
  write_file(dir.path() / "selftest.jsonl", lines);
  const Schema s = selftest_schema();
  // Guarded, as every loaded version is: the guard turns the throw into a failed case.
  return run_selftests(*testing::guarded_shared(std::make_shared<DoubleModel>()), s,
                       dir.path() / "selftest.jsonl");
}

TEST(SelfTest, PassingCases) {
  auto r =
      run("{\"features\": {\"x\": 1}, \"expected\": 2}\n\n"
          "{\"name\": \"big\", \"features\": {\"x\": 1000}, \"expected\": 2000.001, "
          "\"atol\": 0.01}\n");
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.cases, 2u);
  EXPECT_EQ(r.passed, 2u);
}

TEST(SelfTest, MismatchIsReportedWithNameAndValues) {
  auto r = run("{\"name\": \"short trip\", \"features\": {\"x\": 1}, \"expected\": 3}\n");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.passed, 0u);
  ASSERT_FALSE(r.failures.empty());
  EXPECT_EQ(r.failures[0], "short trip: expected 3, got 2");
}

TEST(SelfTest, DefaultToleranceIsTight) {
  EXPECT_FALSE(run("{\"features\": {\"x\": 1}, \"expected\": 2.001}\n").ok());
  EXPECT_TRUE(run("{\"features\": {\"x\": 1}, \"expected\": 2.00001}\n").ok());
}

TEST(SelfTest, ThrowingModelFailsCleanly) {
  auto r = run("{\"features\": {\"x\": 13}, \"expected\": 26}\n");
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.summary().find("predict threw: unlucky"), std::string::npos) << r.summary();
}

TEST(SelfTest, MalformedLinesNameTheLine) {
  auto r =
      run("{\"features\": {\"x\": 1}, \"expected\": 2}\n{\"features\": {\"z\": 1}, "
          "\"expected\": 2}\n");
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.summary().find("selftest.jsonl:2: unknown feature 'z'"), std::string::npos)
      << r.summary();
  EXPECT_FALSE(run("not json\n").ok());
  EXPECT_NE(run("{\"features\": {\"x\": 1}}\n").summary().find("'expected' is required"),
            std::string::npos);
}

TEST(SelfTest, MissingOrEmptyFileFails) {
  const Schema s = selftest_schema();
  auto missing = run_selftests(DoubleModel(), s, "/nonexistent/selftest.jsonl");
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.summary().find("is missing"), std::string::npos);
  EXPECT_FALSE(run("\n\n").ok());
}

}  // namespace
}  // namespace forklift
