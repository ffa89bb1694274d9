#include "core/cold_start.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "test_util.h"

namespace forklift {
namespace {

class Doubler : public Model {
 public:
  Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
    for (std::size_t r = 0; r < batch.rows(); ++r) {
      outputs.emplace_back(2 * std::get<double>(batch.row(r)[0]));
    }
    return Status::Ok();
  }
};

std::shared_ptr<const LoadedModel> loaded_doubler() {
  auto m = std::make_shared<LoadedModel>();
  m->model_id = "m";
  m->version = 1;
  m->model = std::make_unique<Doubler>();
  return m;
}

TEST(ColdStarter, RequestsWaitingForOneVersionShareOneLoad) {
  std::atomic<int> loads{0};
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  MemoryBudgetStats stats;
  ColdStarter starter(
      [&](const std::string&, std::int64_t) -> Result<std::shared_ptr<const LoadedModel>> {
        ++loads;
        opened.wait();  // the load takes as long as the test says
        return loaded_doubler();
      },
      std::chrono::seconds(30), 100, &stats);
  const Schema schema = testing::one_float_schema();
  std::vector<Batch> batches;
  for (int i = 0; i < 8; ++i) {
    batches.emplace_back(schema);
    batches.back().add_row()[0] = static_cast<double>(i);
  }
  std::vector<std::promise<double>> answers(8);
  for (int i = 0; i < 8; ++i) {
    starter.submit("m", 1, batches[i], [&answers, i](Status s, std::vector<Value> out) {
      answers[i].set_value(s.ok() ? std::get<double>(out.at(0)) : -1);
    });
  }
  gate.set_value();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(answers[i].get_future().get(), 2.0 * i);
  EXPECT_EQ(loads.load(), 1);
  EXPECT_EQ(stats.cold_requests.load(), 8u);
  EXPECT_EQ(stats.cold_start_seconds.count(), 8u);
}

TEST(ColdStarter, AnswersUnavailableAfterTheWaitAndWhenTheLoadFails) {
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  MemoryBudgetStats stats;
  ColdStarter starter(
      [&](const std::string&, std::int64_t v) -> Result<std::shared_ptr<const LoadedModel>> {
        if (v == 2) return FailedPrecondition("self-tests failed");
        opened.wait();
        return loaded_doubler();
      },
      std::chrono::milliseconds(50), 100, &stats);
  const Schema schema = testing::one_float_schema();
  Batch b(schema);
  b.add_row()[0] = 1.0;
  std::promise<Status> late;
  starter.submit("m", 1, b, [&](Status s, std::vector<Value>) { late.set_value(s); });
  const Status waited = late.get_future().get();  // the load is still held
  EXPECT_EQ(waited.code(), StatusCode::kUnavailable);
  EXPECT_NE(waited.message().find("cold start"), std::string::npos);
  EXPECT_EQ(stats.cold_timeouts.load(), 1u);
  gate.set_value();

  std::promise<Status> failed;
  starter.submit("m", 2, b, [&](Status s, std::vector<Value>) { failed.set_value(s); });
  const Status why = failed.get_future().get();
  EXPECT_EQ(why.code(), StatusCode::kUnavailable);
  EXPECT_NE(why.message().find("self-tests failed"), std::string::npos);
}

TEST(ColdStarter, RefusesAtOnceWhenTooManyWait) {
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  MemoryBudgetStats stats;
  ColdStarter starter(
      [&](const std::string&, std::int64_t) -> Result<std::shared_ptr<const LoadedModel>> {
        opened.wait();
        return loaded_doubler();
      },
      std::chrono::seconds(30), 2, &stats);
  const Schema schema = testing::one_float_schema();
  Batch b(schema);
  b.add_row()[0] = 1.0;
  std::vector<std::promise<Status>> results(3);
  for (auto& r : results) {
    starter.submit("m", 1, b, [&r](Status s, std::vector<Value>) { r.set_value(s); });
  }
  EXPECT_EQ(results[2].get_future().get().code(), StatusCode::kUnavailable);
  EXPECT_EQ(stats.cold_refused.load(), 1u);
  gate.set_value();
  EXPECT_TRUE(results[0].get_future().get().ok());
  EXPECT_TRUE(results[1].get_future().get().ok());
}

TEST(ColdStarter, WaitingRequestsAreAnsweredWhenItStops) {
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  auto starter = std::make_unique<ColdStarter>(
      [&](const std::string&, std::int64_t) -> Result<std::shared_ptr<const LoadedModel>> {
        opened.wait();
        return loaded_doubler();
      },
      std::chrono::seconds(30), 100, nullptr);
  const Schema schema = testing::one_float_schema();
  Batch b(schema);
  b.add_row()[0] = 1.0;
  // Version 1's load is held; version 2 is queued behind it: both wait when the starter stops.
  std::promise<Status> first;
  std::promise<Status> second;
  starter->submit("m", 1, b, [&](Status s, std::vector<Value>) { first.set_value(s); });
  starter->submit("m", 2, b, [&](Status s, std::vector<Value>) { second.set_value(s); });
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    gate.set_value();
  });
  starter.reset();
  release.join();
  // Every request still waiting is answered, none is left hanging.
  for (auto* p : {&first, &second}) {
    const Status s = p->get_future().get();
    EXPECT_EQ(s.code(), StatusCode::kUnavailable);
    EXPECT_NE(s.message().find("shutting down"), std::string::npos);
  }
}

}  // namespace
}  // namespace forklift
