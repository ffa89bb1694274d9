// The data-plane routes, called directly (no sockets): request in, status and JSON out.
#include "api/router.h"

#include <gtest/gtest.h>

#include "observability/log.h"
#include "test_util.h"

namespace forklift {
namespace {

using testing::write_sum_version;

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::set_min_level(log::Level::kError);
    write_sum_version(repo.path(), "sum", 1, 0, 3, "all");
    write_sum_version(repo.path(), "sum", 2, 100, 103, "all");
    std::filesystem::copy(std::filesystem::path(FORKLIFT_SOURCE_DIR) / "examples/models/surge",
                          repo.path() / "surge", std::filesystem::copy_options::recursive);
    ASSERT_TRUE(registry.sync().ok());
  }
  void TearDown() override { log::set_min_level(log::Level::kInfo); }

  HttpResponse call(std::string_view method, std::string_view target, std::string body = "") {
    bodies.push_back(std::make_unique<std::string>(std::move(body)));
    HttpRequest req;
    req.method = method;
    req.target = target;
    req.body = bodies.back().get();
    HttpResponse res;
    res.request_id = "rid-1";
    router.handle(req, res);
    return res;
  }

  testing::TempDir repo;
  MetricsRegistry metrics;
  ModelRegistry registry{repo.path(), metrics};
  InferenceService inference{registry, nullptr, nullptr};
  Router router{ApiContext{&registry, &inference, &metrics}};
  std::vector<std::unique_ptr<std::string>> bodies;
};

TEST_F(RouterTest, InferOneRow) {
  auto res = call("POST", "/infer", R"({"model_id": "sum", "features": {"a": 1, "b": 2.5}})");
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.body, R"({"model_id":"sum","version":2,"output":103.5,"request_id":"rid-1"})");
}

TEST_F(RouterTest, InferExplicitVersionAndBatch) {
  auto res = call("POST", "/infer",
                  R"({"instances": [{"a": 1, "b": 1}, {"a": 2, "b": 2}], "version": 1,
                      "model_id": "sum"})");
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.body, R"({"model_id":"sum","version":1,"outputs":[2,4],"request_id":"rid-1"})");
  EXPECT_EQ(call("POST", "/infer", R"({"model_id": "sum", "version": "1",
                                       "features": {"a": 1, "b": 1}})")
                .status,
            200u);
}

TEST_F(RouterTest, CustomRuntime) {
  auto res = call("POST", "/infer",
                  R"({"model_id": "surge", "features": {"open_requests": 20,
                      "available_drivers": 10, "hour_of_day": 8, "is_raining": true, "city": "sf"}})");
  EXPECT_EQ(res.status, 200u);
  EXPECT_NE(res.body.find("\"output\":1.95"), std::string::npos) << res.body;
}

struct BadRequest {
  std::string body;
  unsigned status;
  std::string error;  // expected substring of the error message
};

// Names the case by the error it expects, in test listings and ctest.
void PrintTo(const BadRequest& c, std::ostream* os) {
  *os << c.status << " " << c.error;
}

class InferErrors : public RouterTest, public ::testing::WithParamInterface<BadRequest> {};

TEST_P(InferErrors, AnswerWithStatusAndMessage) {
  const auto& c = GetParam();
  auto res = call("POST", "/infer", c.body);
  EXPECT_EQ(res.status, c.status) << res.body;
  EXPECT_TRUE(res.body.starts_with("{\"error\":")) << res.body;
  EXPECT_NE(res.body.find(c.error), std::string::npos) << res.body;
}

INSTANTIATE_TEST_SUITE_P(
    Router, InferErrors,
    ::testing::Values(
        BadRequest{"", 400, "body is empty"},
        BadRequest{"{\"model_id\": \"sum\", ", 400, "malformed JSON"},
        BadRequest{"[1]", 400, "must be a JSON object"},
        BadRequest{R"({"features": {"a": 1, "b": 2}})", 400, "'model_id' is required"},
        BadRequest{R"({"model_id": 7, "features": {}})", 400, "'model_id' must be a string"},
        BadRequest{R"({"model_id": "sum"})", 400, "exactly one of 'features'"},
        BadRequest{R"({"model_id": "sum", "features": {"a": 1, "b": 2}, "instances": []})", 400,
                   "exactly one of"},
        BadRequest{R"({"model_id": "sum", "feature": {"a": 1}})", 400, "unknown field 'feature'"},
        BadRequest{R"({"model_id": "sum", "features": {"a": 1}})", 400, "missing feature 'b'"},
        BadRequest{R"({"model_id": "sum", "features": {"a": "x", "b": 1}})", 400,
                   "feature 'a' must be a number"},
        BadRequest{R"({"model_id": "sum", "features": {"a": null, "b": 1}})", 400,
                   "feature 'a' is null"},
        BadRequest{R"({"model_id": "sum", "features": {"a": 1, "b": 2, "c": 3}})", 400,
                   "unknown feature 'c'"},
        BadRequest{R"({"model_id": "sum", "version": 0, "features": {}})", 400,
                   "'version' must be a positive integer"},
        BadRequest{R"({"model_id": "nope", "features": {}})", 404, "unknown model 'nope'"},
        BadRequest{R"({"model_id": "sum", "version": 9, "features": {"a": 1, "b": 1}})", 404,
                   "version 9 of model 'sum' does not exist; serving versions: 1, 2"},
        BadRequest{R"({"model_id": "sum", "features": {"a": -1, "b": 1}})", 500,
                   "model 'sum' version 2 failed to predict: predict threw: negative a is not "
                   "supported"}));

TEST_F(RouterTest, WrongMethodIs405WithAllow) {
  auto res = call("GET", "/infer");
  EXPECT_EQ(res.status, 405u);
  ASSERT_EQ(res.headers.size(), 1u);
  EXPECT_EQ(res.headers[0].second, "POST");
  EXPECT_EQ(call("POST", "/healthz").status, 405u);
  EXPECT_EQ(call("DELETE", "/v2/models/sum").status, 405u);
}

TEST_F(RouterTest, UnknownPathIs404) {
  auto res = call("GET", "/nope");
  EXPECT_EQ(res.status, 404u);
  EXPECT_EQ(res.body, R"({"error":"no route for GET /nope"})");
}

TEST_F(RouterTest, Health) {
  EXPECT_EQ(call("GET", "/healthz").body, R"({"live":true})");
  EXPECT_EQ(call("GET", "/v2/health/live").status, 200u);
  EXPECT_EQ(call("GET", "/readyz").body, R"({"ready":true})");
  EXPECT_EQ(call("GET", "/v2/health/ready").status, 200u);
}

// Readiness means "serving what it should": a model that never had a good version (here one
// present from the start) is reported, not fatal — Kubernetes must not pull a pod serving every
// other model because of it.
TEST_F(RouterTest, ReadyzStays200WhenAModelNeverHadAGoodVersion) {
  testing::write_file(repo.path() / "bad" / "1" / "model.yaml", "nonsense: [");
  ModelRegistry fresh{repo.path(), metrics};
  ASSERT_TRUE(fresh.sync().ok());
  InferenceService fresh_inference{fresh, nullptr, nullptr};
  Router router_on_fresh{ApiContext{&fresh, &fresh_inference, &metrics}};
  const auto get = [&](const char* target) {
    std::string body;
    HttpRequest req;
    req.method = "GET";
    req.target = target;
    req.body = &body;
    HttpResponse res;
    router_on_fresh.handle(req, res);
    return res;
  };
  EXPECT_EQ(get("/readyz").status, 200u);
  EXPECT_EQ(get("/v2/health/ready").status, 200u);
  // Reported: its own ready route, and the metrics.
  const HttpResponse model_ready = get("/v2/models/bad/ready");
  EXPECT_EQ(model_ready.status, 503u);
  EXPECT_EQ(model_ready.body, R"({"name":"bad","ready":false})");
  EXPECT_NE(get("/metrics").body.find("forklift_model_versions_serving{model_id=\"bad\"} 0"),
            std::string::npos);
}

TEST_F(RouterTest, ReadyzIs503WhenAModelThatServedLosesEveryVersion) {
  ASSERT_EQ(call("GET", "/readyz").status, 200u);
  // Every version of "sum" goes; the one that replaces them fails its self-tests.
  std::filesystem::remove_all(repo.path() / "sum");
  testing::write_sum_version(repo.path(), "sum", 3, 0, 999);
  ASSERT_TRUE(registry.sync().ok());
  const HttpResponse res = call("GET", "/readyz");
  EXPECT_EQ(res.status, 503u);
  EXPECT_NE(res.body.find("no ready version for: sum"), std::string::npos) << res.body;
}

TEST_F(RouterTest, V2ServerMetadata) {
  auto res = call("GET", "/v2");
  EXPECT_EQ(res.body, R"({"name":"forklift","version":"0.1.0","extensions":[]})");
}

TEST_F(RouterTest, V2ModelMetadataAndReady) {
  auto res = call("GET", "/v2/models/sum");
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(
      res.body,
      R"({"name":"sum","versions":["1","2"],"platform":"cpp_test_sum","inputs":[)"
      R"({"name":"a","datatype":"FP32","shape":[-1]},{"name":"b","datatype":"FP32","shape":[-1]}],)"
      R"("outputs":[{"name":"total","datatype":"FP32","shape":[-1]}]})");
  EXPECT_EQ(call("GET", "/v2/models/sum/versions/1").status, 200u);
  EXPECT_EQ(call("GET", "/v2/models/sum/versions/7").status, 404u);
  EXPECT_EQ(call("GET", "/v2/models/sum/versions/x").status, 400u);
  EXPECT_EQ(call("GET", "/v2/models/nope").status, 404u);
  EXPECT_EQ(call("GET", "/v2/models/sum/ready").body, R"({"name":"sum","ready":true})");
  EXPECT_EQ(call("GET", "/v2/models/sum/versions/1/ready").status, 200u);
  EXPECT_EQ(call("GET", "/v2/models/nope/ready").status, 404u);
  EXPECT_EQ(call("GET", "/v2/models/..%2f..%2fetc/ready").status, 404u);
}

TEST_F(RouterTest, V2InferPerFeatureTensors) {
  auto res = call("POST", "/v2/models/sum/versions/1/infer", R"({
    "id": "req-7",
    "inputs": [
      {"name": "a", "shape": [2], "datatype": "FP32", "data": [1, 2]},
      {"name": "b", "shape": [2, 1], "datatype": "INT32", "data": [[10], [20]]}
    ]})");
  EXPECT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.body, R"({"model_name":"sum","model_version":"1","id":"req-7","outputs":[)"
                      R"({"name":"total","datatype":"FP32","shape":[2],"data":[11,22]}]})");
}

TEST_F(RouterTest, V2InferOneMatrixTensor) {
  auto res = call("POST", "/v2/models/sum/infer", R"({
    "inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}],
    "outputs": [{"name": "total"}]})");
  EXPECT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.body, R"({"model_name":"sum","model_version":"2","id":"rid-1","outputs":[)"
                      R"({"name":"total","datatype":"FP32","shape":[2],"data":[103,107]}]})");
}

TEST_F(RouterTest, V2InferBoolAndIntTensors) {
  auto res = call("POST", "/v2/models/surge/infer", R"({"inputs": [
      {"name": "open_requests", "shape": [1], "datatype": "INT64", "data": [20]},
      {"name": "available_drivers", "shape": [1], "datatype": "INT32", "data": [10]},
      {"name": "hour_of_day", "shape": [1], "datatype": "INT8", "data": [8]},
      {"name": "is_raining", "shape": [1], "datatype": "BOOL", "data": [true]},
      {"name": "city", "shape": [1], "datatype": "BYTES", "data": ["sf"]}]})");
  EXPECT_EQ(res.status, 200u) << res.body;
  EXPECT_NE(res.body.find("\"data\":[1.95]"), std::string::npos) << res.body;
}

TEST_F(RouterTest, V2InferErrors) {
  const auto error = [&](const std::string& body) {
    auto res = call("POST", "/v2/models/sum/infer", body);
    EXPECT_EQ(res.status, 400u) << body;
    return res.body;
  };
  EXPECT_NE(error(R"({"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1]}]})")
                .find("missing input 'b'"),
            std::string::npos);
  EXPECT_NE(error(R"({"inputs": [{"name": "a", "shape": [2], "datatype": "FP32", "data": [1]},
                                 {"name": "b", "shape": [2], "datatype": "FP32", "data": [1, 2]}]})")
                .find("shape [2] holds 2 element(s) but data has 1"),
            std::string::npos);
  EXPECT_NE(error(R"({"inputs": [{"name": "a", "shape": [1], "datatype": "FP16", "data": [1]}]})")
                .find("'FP16' is not supported"),
            std::string::npos);
  EXPECT_NE(error(R"({"inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": ["x"]},
                                 {"name": "b", "shape": [1], "datatype": "FP32", "data": [1]}]})")
                .find("cannot feed feature 'a'"),
            std::string::npos);
  EXPECT_NE(error(R"({"inputs": [{"name": "a", "shape": [1], "datatype": "INT8", "data": [300]}]})")
                .find("out of range"),
            std::string::npos);
  EXPECT_NE(error(R"({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32",
                                  "data": [1, 2, 3]}]})")
                .find("[N, 2]"),
            std::string::npos);
  EXPECT_NE(error(R"({"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1]},
                                 {"name": "b", "shape": [1], "datatype": "FP32", "data": [1]}],
                      "outputs": [{"name": "nope"}]})")
                .find("unknown output 'nope'"),
            std::string::npos);
  EXPECT_NE(error(R"({"id": "x"})").find("'inputs' is required"), std::string::npos);
  EXPECT_NE(error(R"({"inputs": [{"name": "a"}]})").find("'datatype' is required"),
            std::string::npos);
  EXPECT_NE(error("{oops").find("malformed JSON"), std::string::npos);
}

// Issue 14, defect 1: a shape sized the batch before it was checked against the data. A zero
// dimension let [3000000, 0] with no data reserve three million rows (1.2 GB); a dimension
// product that wraps around 2^64 matched 16 values and then allocated until bad_alloc.
TEST_F(RouterTest, V2ShapesCannotSizeAllocationsBeyondTheData) {
  const auto error = [&](const std::string& body) {
    auto res = call("POST", "/v2/models/sum/infer", body);
    EXPECT_EQ(res.status, 400u) << body << " -> " << res.body;
    return res.body;
  };
  EXPECT_NE(error(R"({"inputs":[{"name":"m","datatype":"FP32","shape":[3000000,0],"data":[]}]})")
                .find("shape must hold positive integers"),
            std::string::npos);
  EXPECT_NE(error(R"({"inputs":[{"name":"a","datatype":"FP32","shape":[0],"data":[]},
                                {"name":"b","datatype":"FP32","shape":[0],"data":[]}]})")
                .find("positive integers"),
            std::string::npos);
  // 1152921504606846977 * 16 is 16 modulo 2^64.
  EXPECT_NE(error(R"({"inputs":[{"name":"input-0","datatype":"FP32",
                     "shape":[1152921504606846977,16],
                     "data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]})")
                .find("holds too many element(s)"),
            std::string::npos);
  EXPECT_NE(error(R"({"inputs":[{"name":"a","datatype":"FP32","shape":[4294967297,4294967297],
                     "data":[1]}]})")
                .find("too many"),
            std::string::npos);
  EXPECT_NE(error(R"({"inputs":[{"name":"a","datatype":"FP32","shape":[1,1,1,1,1,1,1,1,1],
                     "data":[1]}]})")
                .find("more than 8 dimensions"),
            std::string::npos);
  EXPECT_NE(error(R"({"inputs":[{"name":"a","datatype":"FP32","shape":[],"data":[1]}]})")
                .find("must not be empty"),
            std::string::npos);
  // One feature's tensor of many rows to a model of several features: refused (missing input)
  // before N rows of every feature are sized.
  EXPECT_NE(error(R"({"inputs":[{"name":"a","datatype":"FP32","shape":[4],"data":[1,2,3,4]}]})")
                .find("missing input 'b'"),
            std::string::npos);
  // The batch dimension of a second input cannot exceed its own data either.
  EXPECT_NE(error(R"({"inputs":[{"name":"a","datatype":"FP32","shape":[1],"data":[1]},
                                {"name":"b","datatype":"FP32","shape":[3000000],"data":[1]}]})")
                .find("shape [3000000] holds 3000000 element(s) but data has 1"),
            std::string::npos);
}

// Values beyond the 32-bit float range became infinity silently in the numeric runtimes.
TEST_F(RouterTest, FloatsBeyondTheFloatRangeAreRefused) {
  auto res = call("POST", "/infer", R"({"model_id": "sum", "features": {"a": 1e39, "b": 1}})");
  EXPECT_EQ(res.status, 400u) << res.body;
  EXPECT_NE(res.body.find("beyond the float range"), std::string::npos) << res.body;
  res = call("POST", "/v2/models/sum/infer",
             R"({"inputs":[{"name":"a","datatype":"FP64","shape":[1],"data":[-1e300]},
                           {"name":"b","datatype":"FP32","shape":[1],"data":[1]}]})");
  EXPECT_EQ(res.status, 400u) << res.body;
  EXPECT_NE(res.body.find("beyond the float range"), std::string::npos) << res.body;
  res = call("POST", "/infer", R"({"model_id": "sum", "features": {"a": 3e38, "b": 1}})");
  EXPECT_EQ(res.status, 200u) << res.body;
  // FLT_MAX's own shortest text is a little above it as a double, and reads as FLT_MAX.
  res = call("POST", "/infer", R"({"model_id": "sum", "features": {"a": 3.4028235e38, "b": 0}})");
  EXPECT_EQ(res.status, 200u) << res.body;
  res = call("POST", "/infer", R"({"model_id": "sum", "features": {"a": 3.4028236e38, "b": 0}})");
  EXPECT_EQ(res.status, 400u) << res.body;
}

TEST_F(RouterTest, MetricsCountRequestsByVersionAndOutcome) {
  call("POST", "/infer", R"({"model_id": "sum", "features": {"a": 1, "b": 2}})");
  call("POST", "/infer", R"({"model_id": "sum", "features": {"a": 1}})");
  call("POST", "/infer", R"({"model_id": "sum", "features": {"a": -1, "b": 2}})");
  auto res = call("GET", "/metrics");
  EXPECT_EQ(res.status, 200u);
  EXPECT_TRUE(res.content_type.starts_with("text/plain; version=0.0.4"));
  const std::string& m = res.body;
  for (const char* line : {
           R"(forklift_requests_total{model_id="sum",version="2",outcome="ok"} 1)",
           R"(forklift_requests_total{model_id="sum",version="2",outcome="client_error"} 1)",
           R"(forklift_requests_total{model_id="sum",version="2",outcome="server_error"} 1)",
           R"(forklift_request_duration_seconds_count{model_id="sum",version="2"} 3)",
           R"(forklift_model_versions_serving{model_id="sum"} 2)",
           R"(forklift_model_version_state{model_id="sum",version="1",state="ready"} 1)",
           R"(forklift_selftest_cases{model_id="surge",version="1",result="passed"} 7)",
           R"(forklift_selftest_passed{model_id="sum",version="2"} 1)",
           R"(forklift_model_load_duration_seconds{model_id="surge",version="1"} )",
           R"(forklift_http_responses_total{code="4xx"} 1)",
       }) {
    EXPECT_NE(m.find(line), std::string::npos) << "missing: " << line << "\n" << m;
  }
}

}  // namespace
}  // namespace forklift
