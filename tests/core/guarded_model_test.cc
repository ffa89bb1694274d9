#include "core/guarded_model.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "test_util.h"

namespace forklift {
namespace {

// x == 1 throws a std::exception, x == 2 throws an int, x == 3 answers twice, x == 4 not at all,
// x < 0 fails; otherwise y = x.
class Misbehaving final : public Model {
 public:
  Status predict(const Batch& batch, std::vector<Value>& out) const override {
    for (std::size_t i = 0; i < batch.rows(); ++i) {
      const double x = batch.row(i).number("x");
      if (x == 1) throw std::runtime_error("bad row");
      if (x == 2) throw 42;
      if (x < 0) return InvalidArgument("negative");
      if (x == 4) continue;
      out.emplace_back(x);
      if (x == 3) out.emplace_back(x);
    }
    return Status::Ok();
  }
};

Status predict(double x, std::vector<Value>& out) {
  static const Schema schema = testing::one_float_schema();
  static const auto model = guarded(std::make_unique<Misbehaving>());
  Batch batch(schema);
  batch.add_row()[0] = x;
  return model->predict(batch, out);
}

TEST(GuardedModel, PassesAGoodAnswerThrough) {
  std::vector<Value> out;
  ASSERT_TRUE(predict(7, out).ok());
  EXPECT_EQ(out, (std::vector<Value>{7.0}));
}

TEST(GuardedModel, TurnsExceptionsIntoInternalErrors) {
  std::vector<Value> out;
  Status s = predict(1, out);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "predict threw: bad row");
  s = predict(2, out);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "predict threw a non-standard exception");
  EXPECT_TRUE(out.empty());
}

TEST(GuardedModel, RefusesTheWrongNumberOfOutputsAndAppendsNothing) {
  std::vector<Value> out{99.0};  // what the caller already had is kept
  Status s = predict(3, out);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "returned 2 outputs for 1 rows");
  EXPECT_EQ(out, (std::vector<Value>{99.0}));
  s = predict(4, out);
  EXPECT_EQ(s.message(), "returned 0 outputs for 1 rows");
  EXPECT_EQ(out.size(), 1u);
}

TEST(GuardedModel, KeepsTheRuntimesOwnStatus) {
  std::vector<Value> out;
  const Status s = predict(-1, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "negative");
}

TEST(GuardedModel, TheDefaultSubmitAnswersOnTheCallersThread) {
  static const Schema schema = testing::one_float_schema();
  const auto model = guarded(std::make_unique<Misbehaving>());
  Batch batch(schema);
  batch.add_row()[0] = 5.0;
  bool called = false;
  model->submit(batch, [&](Status s, std::vector<Value> out) {
    called = true;
    EXPECT_TRUE(s.ok());
    EXPECT_EQ(out, (std::vector<Value>{5.0}));
  });
  EXPECT_TRUE(called);
  batch.mutable_row(0)[0] = 1.0;
  model->submit(batch, [&](Status s, std::vector<Value> out) {
    EXPECT_EQ(s.code(), StatusCode::kInternal);
    EXPECT_TRUE(out.empty());
  });
}

}  // namespace
}  // namespace forklift
