#include "core/inference/inference_service.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>

#include "observability/log.h"
#include "test_util.h"

// The `test_gated` runtime: a + b, but a call waits while the gate is closed. Open by default
// (self-tests run at load); a test closes it to hold a runtime call in progress.
namespace gate {
std::mutex mu;
std::condition_variable opened;
bool closed = false;

void close() {
  std::lock_guard lock(mu);
  closed = true;
}
void open() {
  {
    std::lock_guard lock(mu);
    closed = false;
  }
  opened.notify_all();
}
}  // namespace gate

struct Nothing {};
forklift::Result<Nothing> load_gated(const forklift::LoadContext&) {
  return Nothing{};
}
forklift::Value predict_gated(const Nothing&, const forklift::RowView& row) {
  std::unique_lock lock(gate::mu);
  gate::opened.wait(lock, [] { return !gate::closed; });
  return row.number("a") + row.number("b");
}
FORKLIFT_REGISTER_RUNTIME("test_gated", load_gated, predict_gated);

namespace forklift {
namespace {

using testing::TempDir;
using testing::write_file;
using testing::write_sum_version;

struct ServiceAnswer {
  Status status;
  std::vector<Value> outputs;
  std::int64_t version = 0;
};

class InferenceServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::set_min_level(log::Level::kError);
    write_sum_version(repo.path(), "sum", 1, 100, 103);
    // A version that batches, on the gated runtime: a test can hold its runtime call.
    write_sum_version(repo.path(), "batched", 1, 0, 3);
    std::string manifest = testing::sum_manifest();
    manifest.replace(manifest.find("test_sum"), 8, "test_gated");
    write_file(repo.path() / "batched" / "1" / "model.yaml",
               manifest + "dynamic_batching: {max_batch_size: 1, max_queue_delay_us: 0}\n");
    ASSERT_TRUE(registry.sync().ok());
  }
  void TearDown() override { log::set_min_level(log::Level::kInfo); }

  // Starts one request for a + b; the future is ready once `done` has run.
  std::future<ServiceAnswer> infer(const std::string& model_id, double a, double b) {
    auto target = service.route(model_id, std::nullopt);
    EXPECT_TRUE(target.ok()) << target.status().message();
    Batch batch(target->schema());
    auto row = batch.add_row();
    row[0] = a;
    row[1] = b;
    auto promise = std::make_shared<std::promise<ServiceAnswer>>();
    auto answer = promise->get_future();
    service.infer(std::move(target).value(), std::move(batch), "r",
                  std::chrono::steady_clock::now(), [promise](const InferenceResult& r) {
                    promise->set_value(ServiceAnswer{r.status, r.outputs, r.model.version});
                  });
    return answer;
  }

  static bool ready(const std::future<ServiceAnswer>& f) {
    return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }

  TempDir repo;
  MetricsRegistry metrics;
  ModelRegistry registry{repo.path(), metrics};
  InferenceService service{registry, nullptr, nullptr};
};

TEST_F(InferenceServiceTest, AVersionWithoutBatchingAnswersBeforeInferReturns) {
  auto answer = infer("sum", 1, 2);
  ASSERT_TRUE(ready(answer));
  const ServiceAnswer a = answer.get();
  ASSERT_TRUE(a.status.ok()) << a.status.message();
  EXPECT_EQ(a.outputs, (std::vector<Value>{103.0}));
  EXPECT_EQ(a.version, 1);
  EXPECT_EQ(metrics.version("sum", 1)->ok.load(), 1u);
}

// The defect this replaced: the v2 route called the batching version's blocking predict, so a
// request waiting for its batch held up its event loop. infer() must return at once and answer
// from the batching thread.
TEST_F(InferenceServiceTest, AVersionThatBatchesAnswersLaterWithoutBlockingTheCaller) {
  gate::close();  // the batching thread's runtime call cannot finish
  auto first = infer("batched", 1, 2);
  auto second = infer("batched", 10, 20);
  EXPECT_FALSE(ready(first));  // both returned while their requests wait
  EXPECT_FALSE(ready(second));
  gate::open();
  const ServiceAnswer a = first.get(), b = second.get();
  ASSERT_TRUE(a.status.ok()) << a.status.message();
  ASSERT_TRUE(b.status.ok()) << b.status.message();
  EXPECT_EQ(a.outputs, (std::vector<Value>{3.0}));
  EXPECT_EQ(b.outputs, (std::vector<Value>{30.0}));
  EXPECT_EQ(metrics.version("batched", 1)->ok.load(), 2u);
}

TEST_F(InferenceServiceTest, AFailedPredictionNamesTheVersionAndCountsAServerError) {
  // The test_sum runtime throws for a negative a; the guard makes it a Status.
  auto answer = infer("sum", -1, 2);
  ASSERT_TRUE(ready(answer));
  const ServiceAnswer a = answer.get();
  EXPECT_EQ(a.status.code(), StatusCode::kInternal);
  EXPECT_NE(a.status.message().find("model 'sum' version 1 failed to predict"), std::string::npos)
      << a.status.message();
  EXPECT_TRUE(a.outputs.empty());
  EXPECT_EQ(metrics.version("sum", 1)->server_error.load(), 1u);
}

TEST_F(InferenceServiceTest, ARefusedRequestIsTheVersionsClientError) {
  auto target = service.route("sum", 1);
  ASSERT_TRUE(target.ok());
  const Status s = service.refuse(*target, InvalidArgument("missing feature 'b'"),
                                  std::chrono::steady_clock::now());
  EXPECT_EQ(s.message(), "missing feature 'b'");
  EXPECT_EQ(metrics.version("sum", 1)->client_error.load(), 1u);
}

TEST_F(InferenceServiceTest, RoutingNamesWhatIsMissing) {
  EXPECT_EQ(service.route("nope", std::nullopt).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service.route("sum", 7).status().code(), StatusCode::kNotFound);
  auto routed = service.route("sum", std::nullopt);
  ASSERT_TRUE(routed.ok());
  EXPECT_TRUE(routed->routed);
  EXPECT_FALSE(service.route("sum", 1)->routed);
}

}  // namespace
}  // namespace forklift
