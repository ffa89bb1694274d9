#include "core/batching_model.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "test_util.h"

namespace forklift {
namespace {

// Doubles `x` and records the size of every call it gets. A row with x == 13 throws; a row with
// x < 0 fails the call; the first call blocks until released when `hold_first` is set.
class RecordingModel : public Model {
 public:
  Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
    {
      std::unique_lock lock(mu_);
      calls_.push_back(batch.rows());
      entered_.notify_all();
      released_.wait(lock, [&] { return !hold_; });
    }
    for (std::size_t r = 0; r < batch.rows(); ++r) {
      const double x = std::get<double>(batch.row(r)[0]);
      if (x == 13) throw std::runtime_error("unlucky");
      if (x < 0) return InvalidArgument("negative");
      outputs.emplace_back(2 * x);
    }
    return Status::Ok();
  }

  void hold() {
    std::lock_guard lock(mu_);
    hold_ = true;
  }
  void release() {
    std::lock_guard lock(mu_);
    hold_ = false;
    released_.notify_all();
  }
  // Waits until `n` calls have started.
  void wait_for_calls(std::size_t n) {
    std::unique_lock lock(mu_);
    entered_.wait(lock, [&] { return calls_.size() >= n; });
  }
  std::vector<std::size_t> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable entered_;
  mutable std::condition_variable released_;
  mutable std::vector<std::size_t> calls_;
  bool hold_ = false;
};

Batch rows(const Schema& schema, std::initializer_list<double> xs) {
  Batch b(schema);
  for (double x : xs) b.add_row()[0] = x;
  return b;
}

// Submits and returns a future for the request's outputs (or its error message).
struct BatchAnswer {
  Status status;
  std::vector<Value> outputs;
};
std::future<BatchAnswer> submit(const BatchingModel& m, const Batch& batch) {
  auto promise = std::make_shared<std::promise<BatchAnswer>>();
  auto future = promise->get_future();
  m.submit(batch, [promise](Status s, std::vector<Value> out) {
    promise->set_value(BatchAnswer{std::move(s), std::move(out)});
  });
  return future;
}

std::vector<double> doubles(const std::vector<Value>& values) {
  std::vector<double> out;
  for (const Value& v : values) out.push_back(std::get<double>(v));
  return out;
}

TEST(BatchingModel, RequestsQueuedWhileARuntimeCallRunsArePredictedTogether) {
  const Schema schema = testing::one_float_schema();
  auto inner = std::make_shared<RecordingModel>();
  BatchingModel model(testing::guarded_shared(inner),
                      BatchingOptions{8, std::chrono::microseconds(0), 1});
  inner->hold();
  const Batch first = rows(schema, {1});
  auto a = submit(model, first);
  inner->wait_for_calls(1);  // the thread is busy with `first`; the next three queue up
  const Batch b1 = rows(schema, {2}), b2 = rows(schema, {3, 4}), b3 = rows(schema, {5});
  auto f1 = submit(model, b1);
  auto f2 = submit(model, b2);
  auto f3 = submit(model, b3);
  inner->release();
  EXPECT_EQ(doubles(a.get().outputs), (std::vector<double>{2}));
  EXPECT_EQ(doubles(f1.get().outputs), (std::vector<double>{4}));
  EXPECT_EQ(doubles(f2.get().outputs), (std::vector<double>{6, 8}));
  EXPECT_EQ(doubles(f3.get().outputs), (std::vector<double>{10}));
  EXPECT_EQ(inner->calls(), (std::vector<std::size_t>{1, 4}));  // one call for the three
}

TEST(BatchingModel, NeverPutsMoreThanMaxBatchSizeRowsInOneCallButRunsALargerRequestAlone) {
  const Schema schema = testing::one_float_schema();
  auto inner = std::make_shared<RecordingModel>();
  BatchingModel model(testing::guarded_shared(inner),
                      BatchingOptions{3, std::chrono::microseconds(0), 1});
  inner->hold();
  const Batch first = rows(schema, {0});
  auto a = submit(model, first);
  inner->wait_for_calls(1);
  const Batch b1 = rows(schema, {1, 2}), b2 = rows(schema, {3, 4}),
              big = rows(schema, {5, 6, 7, 8});
  auto f1 = submit(model, b1);
  auto f2 = submit(model, b2);
  auto f3 = submit(model, big);
  inner->release();
  EXPECT_EQ(doubles(f1.get().outputs), (std::vector<double>{2, 4}));
  EXPECT_EQ(doubles(f2.get().outputs), (std::vector<double>{6, 8}));
  EXPECT_EQ(doubles(f3.get().outputs), (std::vector<double>{10, 12, 14, 16}));
  a.get();
  EXPECT_EQ(inner->calls(), (std::vector<std::size_t>{1, 2, 2, 4}));
}

TEST(BatchingModel, AFullBatchDoesNotWaitForTheQueueDelay) {
  // With an hour of queue delay, only a full batch can start a call: two one-row requests with
  // max_batch_size 2 are answered together at once.
  const Schema schema = testing::one_float_schema();
  auto inner = std::make_shared<RecordingModel>();
  BatchingModel model(testing::guarded_shared(inner), BatchingOptions{2, std::chrono::hours(1), 1});
  const Batch b1 = rows(schema, {1}), b2 = rows(schema, {2});
  auto f1 = submit(model, b1);
  auto f2 = submit(model, b2);
  EXPECT_EQ(doubles(f1.get().outputs), (std::vector<double>{2}));
  EXPECT_EQ(doubles(f2.get().outputs), (std::vector<double>{4}));
  EXPECT_EQ(inner->calls(), (std::vector<std::size_t>{2}));
}

TEST(BatchingModel, AFailedOrThrowingCallFailsEveryRequestInItAndNotTheNextOnes) {
  const Schema schema = testing::one_float_schema();
  auto inner = std::make_shared<RecordingModel>();
  BatchingModel model(testing::guarded_shared(inner),
                      BatchingOptions{8, std::chrono::microseconds(0), 1});
  for (double bad : {-1.0, 13.0}) {
    inner->hold();
    const Batch first = rows(schema, {0});
    const std::size_t before = inner->calls().size();
    auto a = submit(model, first);
    inner->wait_for_calls(before + 1);
    const Batch good = rows(schema, {1}), poison = rows(schema, {bad});
    auto f1 = submit(model, good);
    auto f2 = submit(model, poison);
    inner->release();
    const BatchAnswer r1 = f1.get(), r2 = f2.get();
    EXPECT_FALSE(r1.status.ok());
    EXPECT_FALSE(r2.status.ok());
    EXPECT_TRUE(r1.outputs.empty());
    EXPECT_NE(r2.status.message().find(bad < 0 ? "negative" : "unlucky"), std::string::npos);
    EXPECT_TRUE(a.get().status.ok());
    std::vector<Value> out;
    EXPECT_TRUE(model.predict(rows(schema, {21}), out).ok());
    EXPECT_EQ(doubles(out), (std::vector<double>{42}));
  }
}

TEST(BatchingModel, TheBlockingFormAnswersManyThreadsCorrectly) {
  const Schema schema = testing::one_float_schema();
  auto inner = std::make_shared<RecordingModel>();
  BatchingModel model(testing::guarded_shared(inner),
                      BatchingOptions{16, std::chrono::microseconds(100), 2});
  auto metrics = std::make_shared<VersionMetrics>();
  model.set_metrics(metrics);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const double x = 100 + t * 1000 + i;  // never 13 (which throws)
        std::vector<Value> out;
        if (!model.predict(rows(schema, {x, x + 0.5}), out).ok() ||
            doubles(out) != std::vector<double>{2 * x, 2 * x + 1}) {
          ++wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  std::size_t total = 0;
  for (std::size_t n : inner->calls()) {
    EXPECT_LE(n, 16u);
    total += n;
  }
  EXPECT_EQ(total, 8u * 200u * 2u);
  EXPECT_EQ(metrics->batching.requests.count(), inner->calls().size());
}

TEST(BatchingModel, UnloadingWithACallInFlightFinishesIt) {
  const Schema schema = testing::one_float_schema();
  auto inner = std::make_shared<RecordingModel>();
  auto model = std::make_unique<BatchingModel>(inner, BatchingOptions{4, {}, 1});
  inner->hold();
  const Batch b = rows(schema, {3});
  auto f = submit(*model, b);
  inner->wait_for_calls(1);
  std::thread unload([&] { model.reset(); });  // waits for the running call
  inner->release();
  unload.join();
  EXPECT_EQ(doubles(f.get().outputs), (std::vector<double>{6}));
}

TEST(BatchingModel, TheLastReferenceMayBeDroppedOnABatchingThread) {
  const Schema schema = testing::one_float_schema();
  auto model = std::make_shared<BatchingModel>(std::make_shared<RecordingModel>(),
                                               BatchingOptions{4, {}, 1});
  const Batch b = rows(schema, {1});
  std::promise<void> done;
  const BatchingModel* raw = model.get();
  raw->submit(b, [keep = std::move(model), &done](Status, std::vector<Value>) mutable {
    keep.reset();  // destroys the model on its own thread
    done.set_value();
  });
  done.get_future().get();
}

// Issue 14: queues are bounded in bytes as well as in requests.
TEST(BatchingModel, ShedsRequestsBeyondTheQueuesByteBound) {
  const Schema schema = testing::one_float_schema();
  auto inner = std::make_shared<RecordingModel>();
  BatchingOptions options{1000, std::chrono::microseconds(0), 1, 1000};
  options.max_queue_bytes = 100 * sizeof(Value);  // room for about 100 rows
  BatchingModel model(testing::guarded_shared(inner), options);
  inner->hold();
  const Batch running = rows(schema, {1});
  auto a = submit(model, running);
  inner->wait_for_calls(1);
  Batch big(schema);
  for (int i = 0; i < 80; ++i) big.add_row()[0] = 2.0;
  const Batch big2 = big;
  Batch huge(schema);
  for (int i = 0; i < 500; ++i) huge.add_row()[0] = 2.0;
  auto f1 = submit(model, big);   // 80 rows: fits
  auto f2 = submit(model, big2);  // 160 rows' worth: refused at once
  ASSERT_EQ(f2.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  const BatchAnswer shed = f2.get();
  EXPECT_EQ(shed.status.code(), StatusCode::kUnavailable);
  EXPECT_NE(shed.status.message().find("bytes of rows waiting"), std::string::npos);
  inner->release();
  EXPECT_EQ(f1.get().outputs.size(), 80u);
  EXPECT_TRUE(a.get().status.ok());
  // A request larger than the whole bound is taken when nothing waits (it runs alone).
  EXPECT_EQ(submit(model, huge).get().outputs.size(), 500u);
}

}  // namespace
}  // namespace forklift

namespace forklift {
namespace {

TEST(BatchingModel, ShedsRequestsBeyondTheQueueLimitAtOnce) {
  const Schema schema = testing::one_float_schema();
  auto inner = std::make_shared<RecordingModel>();
  BatchingModel model(testing::guarded_shared(inner),
                      BatchingOptions{1, std::chrono::microseconds(0), 1, 2});
  auto metrics = std::make_shared<VersionMetrics>();
  model.set_metrics(metrics);
  inner->hold();
  const Batch running = rows(schema, {1});
  auto a = submit(model, running);
  inner->wait_for_calls(1);  // the call runs; the queue is empty again
  const Batch b1 = rows(schema, {2}), b2 = rows(schema, {3}), b3 = rows(schema, {4});
  auto f1 = submit(model, b1);
  auto f2 = submit(model, b2);
  auto f3 = submit(model, b3);  // the third waiting request: refused without waiting
  ASSERT_EQ(f3.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  const BatchAnswer shed = f3.get();
  EXPECT_EQ(shed.status.code(), StatusCode::kUnavailable);
  EXPECT_NE(shed.status.message().find("queue is full (2 requests waiting)"), std::string::npos);
  EXPECT_EQ(metrics->shed.load(), 1u);
  inner->release();
  EXPECT_EQ(doubles(f1.get().outputs), (std::vector<double>{4}));
  EXPECT_EQ(doubles(f2.get().outputs), (std::vector<double>{6}));
  EXPECT_TRUE(a.get().status.ok());
}

}  // namespace
}  // namespace forklift
