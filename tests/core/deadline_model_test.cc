#include "core/deadline_model.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "test_util.h"

namespace forklift {
namespace {

// Doubles `x`; a row with x < 0 blocks until released (a hung runtime).
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  std::atomic<int> finished{0};
};

class HangingModel : public Model {
 public:
  explicit HangingModel(std::shared_ptr<Gate> gate) : gate_(std::move(gate)) {}
  Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
    for (std::size_t r = 0; r < batch.rows(); ++r) {
      const double x = std::get<double>(batch.row(r)[0]);
      if (x < 0) {
        std::unique_lock lock(gate_->mu);
        gate_->cv.wait(lock, [&] { return gate_->open; });
      }
      if (x == 13) throw std::runtime_error("unlucky");
      outputs.emplace_back(2 * x);
    }
    ++gate_->finished;
    return Status::Ok();
  }

 private:
  std::shared_ptr<Gate> gate_;
};

Status predict_one(const Model& m, const Schema& schema, double x, std::vector<Value>& out) {
  Batch batch(schema);
  batch.add_row()[0] = x;
  return m.predict(batch, out);
}

TEST(DeadlineModel, AnswersInTimeAndGivesUpOnAHungCall) {
  const Schema schema = testing::one_float_schema();
  auto gate = std::make_shared<Gate>();
  auto model = with_deadline(testing::guarded_shared(std::make_shared<HangingModel>(gate)), schema,
                             std::chrono::milliseconds(500), 2);
  std::vector<Value> out;
  ASSERT_TRUE(predict_one(*model, schema, 4, out).ok());
  EXPECT_EQ(std::get<double>(out.at(0)), 8);

  out.clear();
  const Status hung = predict_one(*model, schema, -1, out);
  EXPECT_EQ(hung.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(hung.message().find("500 ms"), std::string::npos);
  EXPECT_TRUE(out.empty());  // nothing from the abandoned call
  // The other worker still answers while one is stuck.
  ASSERT_TRUE(predict_one(*model, schema, 5, out).ok());
  EXPECT_EQ(std::get<double>(out.at(0)), 10);
  // A runtime that throws is an error, not a crash.
  out.clear();
  EXPECT_EQ(predict_one(*model, schema, 13, out).code(), StatusCode::kInternal);

  // Unloading while a call is stuck does not wait for it; the call ends on its own later.
  model.reset();
  {
    std::lock_guard lock(gate->mu);
    gate->open = true;
  }
  gate->cv.notify_all();
  for (int i = 0; i < 200 && gate->finished.load() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(gate->finished.load(), 3);  // 4, 5 and the released -1
}

TEST(DeadlineModel, WhenEveryWorkerIsStuckCallsTimeOutInsteadOfWaiting) {
  const Schema schema = testing::one_float_schema();
  auto gate = std::make_shared<Gate>();
  auto model = with_deadline(testing::guarded_shared(std::make_shared<HangingModel>(gate)), schema,
                             std::chrono::milliseconds(50), 1);
  std::vector<Value> out;
  EXPECT_EQ(predict_one(*model, schema, -1, out).code(), StatusCode::kDeadlineExceeded);
  // The only worker is stuck: this call waits in the queue and is given up on at its deadline.
  EXPECT_EQ(predict_one(*model, schema, 1, out).code(), StatusCode::kDeadlineExceeded);
  {
    std::lock_guard lock(gate->mu);
    gate->open = true;
  }
  gate->cv.notify_all();
  // Released: the worker is free again (the abandoned queued call was never started).
  Status s;
  for (int i = 0; i < 20; ++i) {
    out.clear();
    s = predict_one(*model, schema, 3, out);
    if (s.ok()) break;
  }
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(std::get<double>(out.at(0)), 6);
}

}  // namespace
}  // namespace forklift
