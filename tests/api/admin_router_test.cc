// The admin API's endpoints (api/admin/), called through AdminRouter without a socket: the token
// and Host rules, each endpoint's answer, and the refusals.
#include "api/admin_router.h"

#include <gtest/gtest.h>

#include <deque>

#include "observability/log.h"
#include "test_util.h"

namespace forklift {
namespace {

using testing::TempDir;
using testing::write_sum_version;

constexpr const char* kToken = "a-token-of-sixteen-chars";

class AdminRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::set_min_level(log::Level::kError);
    write_sum_version(repo.path(), "sum", 1, 0, 3, "all");
    write_sum_version(repo.path(), "sum", 2, 10, 13, "all");
    ASSERT_TRUE(registry.sync().ok());
  }
  void TearDown() override { log::set_min_level(log::Level::kInfo); }

  HttpResponse call(std::string_view method, std::string_view target, std::string body = "",
                    bool token = true, std::string_view actor = "tester") {
    bodies.push_back(std::make_unique<std::string>(std::move(body)));
    const std::string authorization = std::string("Bearer ") + kToken;
    HttpRequest req;
    req.method = method;
    req.target = target;
    req.body = bodies.back().get();
    req.authorization =
        token ? std::string_view(authorizations.emplace_back(authorization)) : std::string_view();
    req.actor = actor;
    req.host = "127.0.0.1:8081";
    HttpResponse res;
    router.handle(req, res);
    return res;
  }

  TempDir repo;
  MetricsRegistry metrics;
  ModelRegistry registry{repo.path(), metrics};
  InferenceService inference{registry, nullptr, nullptr};
  AdminRouter router{ApiContext{&registry, &inference, &metrics}, kToken};
  std::vector<std::unique_ptr<std::string>> bodies;
  std::deque<std::string> authorizations;
};

TEST_F(AdminRouterTest, ChangesNeedTheTokenAndReadsNeedAnAllowedHost) {
  EXPECT_EQ(call("POST", "/admin/models/sum/rollback", "", false).status, 401u);
  EXPECT_EQ(call("GET", "/admin/models", "", false).status, 200u);
  HttpRequest req;
  std::string body;
  req.method = "GET";
  req.target = "/admin/models";
  req.body = &body;
  req.host = "evil.example:8081";  // a rebound name: refused without the token
  HttpResponse res;
  router.handle(req, res);
  EXPECT_EQ(res.status, 403u);
}

TEST_F(AdminRouterTest, AModelShowsItsVersionsStatesAndShadowComparisons) {
  const HttpResponse res = call("GET", "/admin/models/sum");
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_NE(res.body.find(R"("model_id":"sum","unloaded":false,"serving":[1,2])"),
            std::string::npos)
      << res.body;
  EXPECT_NE(res.body.find(R"("state":"ready")"), std::string::npos);
  EXPECT_NE(res.body.find(R"("shadow_comparisons":[],"drift":[])"), std::string::npos) << res.body;
  EXPECT_EQ(call("GET", "/admin/models/nope").status, 404u);
  EXPECT_EQ(call("GET", "/admin/models/..").status, 404u);
}

TEST_F(AdminRouterTest, DeploymentPromoteRollbackAndTheAuditLog) {
  HttpResponse res =
      call("PUT", "/admin/models/sum/deployment", R"({"routes": [{"version": 1, "weight": 1}]})");
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.body, R"({"model_id":"sum","deployment":{"routes":[{"version":1,"weight":1}],)"
                      R"("shadows":[]}})");
  res = call("POST", "/admin/models/sum/promote", R"({"version": 2})");
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(call("POST", "/admin/models/sum/promote", R"({"version": "2"})").status, 400u);
  EXPECT_EQ(call("POST", "/admin/models/sum/rollback").status, 200u);
  res = call("GET", "/admin/audit");
  EXPECT_NE(res.body.find(R"("actor":"tester","model_id":"sum","action":"promote")"),
            std::string::npos)
      << res.body;
}

TEST_F(AdminRouterTest, ReloadAnswersForKnownVersionsOnly) {
  HttpResponse res = call("POST", "/admin/models/sum/versions/2/reload");
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.body, R"({"model_id":"sum","version":2,"reloaded":true})");
  for (const char* bad :
       {"/admin/models/sum/versions/9/reload", "/admin/models/sum/versions/0/reload",
        "/admin/models/sum/versions/-1/reload",
        "/admin/models/sum/versions/99999999999999999999/reload",
        "/admin/models/nope/versions/1/reload"}) {
    EXPECT_EQ(call("POST", bad).status, 404u) << bad;
  }
  EXPECT_EQ(call("GET", "/admin/models/sum/versions/2/reload").status, 405u);
}

TEST_F(AdminRouterTest, WhoActsMustBePlainAscii) {
  EXPECT_EQ(call("POST", "/admin/models/sum/rollback", "", true, "Jos\xe9").status, 400u);
  EXPECT_EQ(call("POST", "/admin/models/sum/rollback", "", true, std::string(65, 'x')).status,
            400u);
  EXPECT_EQ(call("POST", "/admin/login", "", true, "").body, R"({"ok":true,"actor":"admin"})");
}

TEST_F(AdminRouterTest, TheRepositoryExtensionListsStatesAndLoadsAndUnloads) {
  HttpResponse res = call("POST", "/v2/repository/index");
  ASSERT_EQ(res.status, 200u);
  EXPECT_EQ(res.body, R"([{"name":"sum","version":"1","state":"READY","reason":""},)"
                      R"({"name":"sum","version":"2","state":"READY","reason":""}])");
  EXPECT_EQ(call("POST", "/v2/repository/models/sum/unload").status, 200u);
  EXPECT_EQ(call("POST", "/v2/repository/models/sum/x/unload").status, 404u);
  EXPECT_EQ(call("POST", "/v2/repository/models/nope/load").status, 404u);
  EXPECT_EQ(call("POST", "/v2/repository/models/sum/load").status, 200u);
}

TEST_F(AdminRouterTest, UnknownRoutesAndMethods) {
  EXPECT_EQ(call("GET", "/admin/nothing").status, 404u);
  EXPECT_EQ(call("POST", "/admin/models").status, 405u);
  EXPECT_EQ(call("DELETE", "/admin/models/sum/deployment").status, 405u);
}

}  // namespace
}  // namespace forklift
