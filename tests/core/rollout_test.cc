// Rollouts (core/rollout/): the policy format, the stored state, the stage deployments, every
// step's rules, the decision's guardrails, and the driver against a real registry.
#include "core/rollout/rollout.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/model_registry.h"
#include "core/rollout/rollout_decision.h"
#include "core/rollout/rollout_driver.h"
#include "core/rollout/rollout_policy.h"
#include "observability/log.h"
#include "test_util.h"

namespace forklift {
namespace {

using Kind = RolloutDecision::Kind;

// ---- policy ---------------------------------------------------------------------------------

TEST(RolloutPolicy, DefaultsAreValidAndNameTheirStages) {
  const RolloutPolicy p;
  EXPECT_TRUE(p.validate().ok());
  EXPECT_EQ(p.stage_names(), (std::vector<std::string>{"shadow", "canary 1%", "canary 10%",
                                                       "canary 50%", "canary 100%"}));
}

TEST(RolloutPolicy, JsonRoundTrips) {
  RolloutPolicy p;
  p.shadow->min_requests = 7;
  p.shadow->agree_tolerance = 0.5;
  p.canary.steps = {0.29, 25, 100};  // 0.29 * 100 is not exactly 29 in binary
  p.canary.hold_seconds = 2.5;
  p.guardrails.quality_metric = "auc";
  p.guardrails.min_labels = 30;
  std::string json;
  append_rollout_policy_json(json, p);
  auto back = parse_rollout_policy_json(json);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, p);

  p.shadow.reset();
  json.clear();
  append_rollout_policy_json(json, p);
  back = parse_rollout_policy_json(json);
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->shadow.has_value());
  EXPECT_EQ(back->stage_names().front(), "canary 0.29%");
}

TEST(RolloutPolicy, EveryFieldIsOptional) {
  auto p = parse_rollout_policy_json("{}");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, RolloutPolicy{});
  p = parse_rollout_policy_json(R"({"canary": {"steps": [50, 100]}})");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->canary.steps, (std::vector<double>{50, 100}));
  EXPECT_TRUE(p->shadow.has_value());
}

TEST(RolloutPolicy, RefusesWhatWouldMisbehaveNamingTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"[]", "must be an object"},
      {"{", "malformed JSON"},
      {R"({"canary": {"stepz": [100]}})", "no field 'stepz'"},
      {R"({"canary": {"steps": []}})", "at least one step"},
      {R"({"canary": {"steps": [10, 10, 100]}})", "must increase"},
      {R"({"canary": {"steps": [-1, 100]}})", "must increase"},
      {R"({"canary": {"steps": [50, 150]}})", "from 0.01 to 100"},
      {R"({"canary": {"steps": [1e-320, 100]}})", "from 0.01 to 100"},
      {R"({"canary": {"steps": [99.999999999, 100]}})", "two decimals"},
      {R"({"canary": {"steps": [50]}})", "last canary step must be 100"},
      {R"({"canary": {"steps": [0.001, 100]}})", "from 0.01 to 100"},
      {R"({"canary": {"hold_seconds": -1}})", "hold_seconds"},
      {R"({"canary": {"min_requests": 1.5}})", "min_requests must be an integer"},
      {R"({"shadow": {"min_agreement": 1.5}})", "min_agreement"},
      {R"({"shadow": {"sample_rate": 0}})", "sample_rate"},
      {R"({"shadow": "yes"})", "must be an object"},
      {R"({"guardrails": {"max_error_ratio_increase": 2}})", "max_error_ratio_increase"},
      {R"({"guardrails": {"max_p99_ratio": 0.9}})", "max_p99_ratio"},
      {R"({"guardrails": {"min_requests": 0}})", "min_requests must be >= 1"},
      {R"({"guardrails": {"quality_metric": "rmse"}})", "quality_metric"},
      {R"({"guardrails": {"quality_metric": 3}})", "a string"},
  };
  for (const auto& [json, words] : cases) {
    const auto p = parse_rollout_policy_json(json);
    ASSERT_FALSE(p.ok()) << json;
    EXPECT_NE(p.status().message().find(words), std::string::npos)
        << json << " -> " << p.status().message();
  }
}

TEST(RolloutPolicy, AHundredStepsAtMost) {
  std::string steps;
  for (int i = 1; i <= 101; ++i) steps += (i > 1 ? "," : "") + std::to_string(i * 0.5);
  const auto p = parse_rollout_policy_json(R"({"canary": {"steps": [)" + steps + "]}}");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("more than 100"), std::string::npos);
}

TEST(RolloutPolicy, ComesFromModelYaml) {
  auto m = parse_manifest_text(
      "runtime: test_sum\nartifact: w.txt\nfeatures:\n  - {name: a, type: float}\n"
      "output: {name: y, type: float}\n"
      "rollout:\n  shadow: false\n  canary:\n    steps: [5, 100]\n    hold_seconds: 0.25\n"
      "  guardrails: {p99_slack_ms: 2, quality_metric: mae}\n",
      "model.yaml");
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_TRUE(m->rollout.has_value());
  EXPECT_FALSE(m->rollout->shadow.has_value());
  EXPECT_EQ(m->rollout->canary.steps, (std::vector<double>{5, 100}));
  EXPECT_EQ(m->rollout->canary.hold_seconds, 0.25);
  EXPECT_EQ(m->rollout->guardrails.quality_metric, "mae");
  auto bad = parse_manifest_text(
      "runtime: test_sum\nartifact: w.txt\nfeatures:\n  - {name: a, type: float}\n"
      "output: {name: y, type: float}\nrollout: {canary: {steps: [5, 50]}}\n",
      "model.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("field 'rollout'"), std::string::npos);
}

// ---- state ----------------------------------------------------------------------------------

Rollout running(std::size_t stage = 0, RolloutPolicy policy = {}) {
  Rollout r;
  r.candidate = 2;
  r.baseline = 1;
  r.policy = std::move(policy);
  r.stage = stage;
  r.started_unix_ms = 1000;
  r.stage_started_unix_ms = 2000;
  return r;
}

TEST(Rollout, JsonRoundTripsWithItsTimeline) {
  Rollout r = running(2);
  r.record({"2026-11-29T00:00:00Z",
            "shadow",
            "advanced",
            "forklift-rollout",
            "passed",
            {{"shadow_copies", 120}, {"shadow_agreement", 1}}});
  std::string json;
  append_rollout_json(json, r);
  auto back = parse_rollout_json(json);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, r);

  ModelControl c;
  c.rollout = r;
  c.revision = 4;
  json.clear();
  append_model_control_json(json, c);
  auto control = parse_model_control_json(json);
  ASSERT_TRUE(control.ok()) << control.status().message();
  EXPECT_EQ(*control, c);
}

TEST(Rollout, RefusesAStoredStateItCannotFollow) {
  std::string json;
  append_rollout_json(json, running(1));
  std::string out_of_range = json;
  out_of_range.replace(out_of_range.find("\"stage\":1"), 9, "\"stage\":9");
  EXPECT_FALSE(parse_rollout_json(out_of_range).ok());
  std::string unknown = json;
  unknown.replace(unknown.find("running"), 7, "sailing");
  EXPECT_FALSE(parse_rollout_json(unknown).ok());
}

TEST(Rollout, TheTimelineIsBoundedAndKeepsItsFirstEntry) {
  Rollout r = running();
  for (int i = 0; i < 200; ++i) r.record({"t", "shadow", i == 0 ? "started" : "x", "a", "", {}});
  EXPECT_EQ(r.timeline.size(), kMaxRolloutTimeline);
  EXPECT_EQ(r.timeline.front().action, "started");
}

TEST(Rollout, EachStageRoutesItsShareKeepingOtherShadows) {
  const std::vector<Shadow> others = {{7, 0.5, 0.1}};
  Rollout r = running(0);
  Deployment d = rollout_deployment(r, others);
  EXPECT_EQ(d.routes, (std::vector<Route>{{1, 1}}));
  ASSERT_EQ(d.shadows.size(), 2u);
  EXPECT_EQ(d.shadows[1].version, 2);
  r.stage = 1;  // canary 1%
  d = rollout_deployment(r, others);
  EXPECT_EQ(d.routes, (std::vector<Route>{{1, 9900}, {2, 100}}));
  EXPECT_EQ(d.shadows, others);
  r.stage = 4;  // canary 100%
  EXPECT_EQ(rollout_deployment(r, {}).routes, (std::vector<Route>{{2, 1}}));
  r.phase = RolloutPhase::kRolledBack;
  EXPECT_EQ(rollout_deployment(r, {}).routes, (std::vector<Route>{{1, 1}}));
  r.phase = RolloutPhase::kSucceeded;
  EXPECT_EQ(rollout_deployment(r, {}).routes, (std::vector<Route>{{2, 1}}));
  Deployment with = d;
  with.shadows.push_back({2, 1, 0.01});
  EXPECT_EQ(unrelated_shadows(r, with), others);
}

TEST(Rollout, StepsApplyOnlyWhereTheyMakeSense) {
  const Rollout r = running(0);
  auto advanced = next_rollout(r, RolloutStep::kAdvance, "me", "");
  ASSERT_TRUE(advanced.ok());
  EXPECT_EQ(advanced->stage, 1u);
  EXPECT_GT(advanced->stage_started_unix_ms, r.stage_started_unix_ms);
  EXPECT_EQ(advanced->timeline.back().action, "advanced");
  EXPECT_EQ(advanced->timeline.back().stage, "shadow");

  auto paused = next_rollout(r, RolloutStep::kPause, "me", "lunch");
  ASSERT_TRUE(paused.ok());
  EXPECT_EQ(paused->phase, RolloutPhase::kPaused);
  EXPECT_FALSE(next_rollout(*paused, RolloutStep::kAdvance, "me", "").ok());
  EXPECT_FALSE(next_rollout(*paused, RolloutStep::kPause, "me", "").ok());
  EXPECT_TRUE(next_rollout(*paused, RolloutStep::kRollBack, "me", "why").ok());
  auto resumed = next_rollout(*paused, RolloutStep::kResume, "me", "");
  ASSERT_TRUE(resumed.ok());
  EXPECT_EQ(resumed->phase, RolloutPhase::kRunning);
  EXPECT_FALSE(next_rollout(r, RolloutStep::kResume, "me", "").ok());

  const Rollout last = running(4);
  EXPECT_FALSE(next_rollout(last, RolloutStep::kAdvance, "me", "").ok());
  auto promoted = next_rollout(last, RolloutStep::kPromote, "me", "");
  ASSERT_TRUE(promoted.ok());
  EXPECT_EQ(promoted->phase, RolloutPhase::kSucceeded);
  for (RolloutStep s : {RolloutStep::kAdvance, RolloutStep::kPromote, RolloutStep::kRollBack,
                        RolloutStep::kPause, RolloutStep::kResume, RolloutStep::kAbort}) {
    const auto refused = next_rollout(*promoted, s, "me", "");
    ASSERT_FALSE(refused.ok()) << step_action(s);
    EXPECT_NE(refused.status().message().find("succeeded"), std::string::npos);
  }
  auto aborted = next_rollout(r, RolloutStep::kAbort, "alice", "");
  ASSERT_TRUE(aborted.ok());
  EXPECT_EQ(aborted->reason, "aborted by alice");
}

// ---- signals --------------------------------------------------------------------------------

TEST(RolloutSignals, WilsonBoundsAllowForChance) {
  EXPECT_EQ(wilson_lower(0, 0), 0);
  EXPECT_EQ(wilson_upper(0, 0), 1);
  EXPECT_NEAR(wilson_lower(5, 100), 0.0215, 0.001);  // 5%: at least about 2%
  EXPECT_NEAR(wilson_upper(5, 100), 0.1118, 0.001);
  EXPECT_LT(wilson_lower(1, 50), 0.01);  // one failure in fifty proves little
  EXPECT_EQ(wilson_lower(0, 1000), 0);
  EXPECT_GT(wilson_lower(1000, 1000), 0.99);
}

VersionSample latencies(std::uint64_t n, double seconds, std::uint64_t errors = 0) {
  VersionMetrics m;
  for (std::uint64_t i = 0; i < n; ++i) {
    m.record(i < errors ? Outcome::kServerError : Outcome::kOk, seconds);
  }
  return sample_of(m);
}

TEST(RolloutSignals, P99IsInterpolatedWithinItsBucketAndWindowsSubtract) {
  const VersionSample none = latencies(0, 0);
  EXPECT_TRUE(std::isnan(none.p99_seconds()));
  const VersionSample fast = latencies(1000, 0.0007);  // in (0.5 ms, 1 ms]
  EXPECT_GT(fast.p99_seconds(), 0.0005);
  EXPECT_LE(fast.p99_seconds(), 0.001);
  const VersionSample slow = latencies(10, 100.0);  // past the last bound
  EXPECT_EQ(slow.p99_seconds(), fine_latency_bounds().back());
  const VersionSample both = latencies(100, 0.003, 7);
  const VersionSample window = both - latencies(40, 0.003, 7);
  EXPECT_EQ(window.requests, 60u);
  EXPECT_EQ(window.errors, 0u);
  EXPECT_EQ(both.error_ratio(), 0.07);
}

// ---- decisions ------------------------------------------------------------------------------

RolloutSignals healthy_shadow(std::uint64_t copies) {
  RolloutSignals s;
  s.baseline = latencies(copies, 0.001);
  s.shadow = ShadowSample{copies, 0, copies, 0};
  return s;
}

TEST(RolloutDecision, TheShadowStageWaitsForItsTimeAndCopiesThenAdvances) {
  const Rollout r = running(0);  // shadow: 100 copies, 30 s
  EXPECT_EQ(decide(r, healthy_shadow(500), 10).kind, Kind::kWait);
  const RolloutDecision few = decide(r, healthy_shadow(60), 31);
  EXPECT_EQ(few.kind, Kind::kWait);
  EXPECT_NE(few.reason.find("40 more shadow copies"), std::string::npos);
  EXPECT_EQ(decide(r, healthy_shadow(100), 31).kind, Kind::kAdvance);
}

TEST(RolloutDecision, ShadowErrorsAndDisagreementRollBackWithTheirFigures) {
  const Rollout r = running(0);
  RolloutSignals s = healthy_shadow(400);
  s.shadow.errors = 20;  // 5%
  RolloutDecision d = decide(r, s, 1);
  EXPECT_EQ(d.kind, Kind::kRollBack);
  EXPECT_NE(d.reason.find("shadow copies of version 2 against version 1 failed 20 of 400"),
            std::string::npos)
      << d.reason;

  s = healthy_shadow(400);
  s.shadow.agree = 300;
  s.shadow.disagree = 100;
  d = decide(r, s, 1);
  EXPECT_EQ(d.kind, Kind::kRollBack);
  EXPECT_NE(d.reason.find("300 of 400 rows agree"), std::string::npos) << d.reason;

  // One disagreeing row in sixty is not yet evidence: wait for more rows.
  s = healthy_shadow(60);
  s.shadow.agree = 59;
  s.shadow.disagree = 1;
  EXPECT_EQ(decide(r, s, 100).kind, Kind::kWait);
}

RolloutSignals canary(std::uint64_t n, double seconds, std::uint64_t errors = 0) {
  RolloutSignals s;
  s.baseline = latencies(2000, 0.002);
  s.candidate = latencies(n, seconds, errors);
  s.candidate_stage = s.candidate;
  return s;
}

TEST(RolloutDecision, TheCanaryErrorGuardrailNeedsEvidence) {
  const Rollout r = running(1);
  EXPECT_EQ(decide(r, canary(40, 0.002, 10), 0).kind, Kind::kWait);  // under min_requests
  EXPECT_EQ(decide(r, canary(200, 0.002, 10), 0).kind, Kind::kRollBack);
  EXPECT_EQ(decide(r, canary(200, 0.002, 1), 0).kind, Kind::kWait);  // hold not over
  // 0.5% errors is within the allowed one point: the stage passes.
  EXPECT_EQ(decide(r, canary(200, 0.002, 1), 61).kind, Kind::kAdvance);
}

TEST(RolloutDecision, TheLatencyGuardrailComparesP99sWithSlack) {
  const Rollout r = running(1);
  RolloutDecision d = decide(r, canary(200, 0.008), 0);
  EXPECT_EQ(d.kind, Kind::kRollBack);
  EXPECT_EQ(d.reason.rfind("p99 latency", 0), 0u) << d.reason;
  EXPECT_EQ(decide(r, canary(99, 0.008), 0).kind, Kind::kWait);  // too few for a p99
  RolloutPolicy slack;
  slack.guardrails.p99_slack_ms = 50;
  EXPECT_EQ(decide(running(1, slack), canary(200, 0.008), 0).kind, Kind::kWait);
}

TEST(RolloutDecision, TheLatencyGuardrailIsNotFooledByABucketBound) {
  // 22 ms against 26 ms (1.18x, under the 1.5x limit) straddle the 25 ms bound: read as the top
  // and the bottom of their buckets, they are not told apart, so nothing trips.
  RolloutSignals s;
  s.baseline = latencies(2000, 0.022);
  s.candidate = latencies(400, 0.026);
  s.candidate_stage = s.candidate;
  EXPECT_EQ(decide(running(1), s, 0).kind, Kind::kWait);
  // 10 ms against 30 ms is told apart.
  s.baseline = latencies(2000, 0.010);
  s.candidate = latencies(400, 0.030);
  s.candidate_stage = s.candidate;
  EXPECT_EQ(decide(running(1), s, 0).kind, Kind::kRollBack);
  // A few slow answers among many fast ones are not evidence.
  s.baseline = latencies(2000, 0.002);
  s.candidate = latencies(400, 0.002);
  const VersionSample slow = latencies(3, 0.02);
  for (std::size_t i = 0; i < s.candidate.latency_buckets.size(); ++i) {
    s.candidate.latency_buckets[i] += slow.latency_buckets[i];
  }
  s.candidate.requests += 3;
  s.candidate_stage = s.candidate;
  EXPECT_EQ(decide(running(1), s, 0).kind, Kind::kWait);
}

TEST(RolloutDecision, WithAQualityGuardrailThePromotionWaitsForLabels) {
  RolloutPolicy p;
  p.guardrails.quality_metric = "mae";
  p.guardrails.min_labels = 10;
  RolloutSignals s = canary(150, 0.002);
  const RolloutDecision d = decide(running(4, p), s, 1e6);
  EXPECT_EQ(d.kind, Kind::kWait);
  EXPECT_NE(d.reason.find("labels"), std::string::npos);
  s.candidate_quality = {10, 1.0};
  s.baseline_quality = {10, 1.0};
  EXPECT_EQ(decide(running(4, p), s, 1e6).kind, Kind::kPromote);
}

TEST(RolloutDecision, TheQualityGuardrailKnowsWhichWayIsBetter) {
  RolloutPolicy p;
  p.guardrails.quality_metric = "mae";
  p.guardrails.max_quality_loss = 0.1;
  p.guardrails.min_labels = 10;
  RolloutSignals s = canary(10, 0.002);
  s.baseline_quality = {50, 1.0};
  s.candidate_quality = {50, 1.2};
  EXPECT_EQ(decide(running(1, p), s, 0).kind, Kind::kRollBack);
  s.candidate_quality = {5, 9.0};  // too few labels to judge
  EXPECT_EQ(decide(running(1, p), s, 0).kind, Kind::kWait);
  p.guardrails.quality_metric = "auc";
  s.candidate_quality = {50, 1.2};  // higher AUC is better
  EXPECT_EQ(decide(running(1, p), s, 0).kind, Kind::kWait);
  s.candidate_quality = {50, 0.8};
  const RolloutDecision d = decide(running(1, p), s, 0);
  EXPECT_EQ(d.kind, Kind::kRollBack);
  EXPECT_NE(d.reason.find("live quality: auc"), std::string::npos) << d.reason;
}

TEST(RolloutDecision, StagesAdvanceAfterTheirHoldAndRequestsAndTheLastPromotes) {
  RolloutSignals s = canary(150, 0.002);
  EXPECT_EQ(decide(running(1), s, 59).kind, Kind::kWait);
  EXPECT_EQ(decide(running(1), s, 61).kind, Kind::kAdvance);
  s.candidate_stage = latencies(20, 0.002);
  const RolloutDecision few = decide(running(1), s, 61);
  EXPECT_EQ(few.kind, Kind::kWait);
  EXPECT_NE(few.reason.find("80 more answers"), std::string::npos);
  EXPECT_EQ(decide(running(4), canary(150, 0.002), 61).kind, Kind::kPromote);
}

TEST(RolloutDecision, APausedRolloutNeverAdvancesButItsGuardrailsStillTrip) {
  Rollout r = running(1);
  r.phase = RolloutPhase::kPaused;
  EXPECT_EQ(decide(r, canary(150, 0.002), 1e6).kind, Kind::kWait);
  EXPECT_EQ(decide(r, canary(200, 0.002, 20), 0).kind, Kind::kRollBack);
  r.phase = RolloutPhase::kSucceeded;
  EXPECT_EQ(decide(r, canary(200, 0.002, 20), 0).kind, Kind::kWait);
}

// ---- the driver against a registry ----------------------------------------------------------

// Grants a lease only when told to: another replica holds it otherwise.
class LeaseStore : public MemoryStateStore {
 public:
  Result<bool> hold_lease(std::string_view, std::chrono::milliseconds) override { return mine; }
  bool mine = true;
};

class RolloutDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::set_min_level(log::Level::kError);
    testing::write_sum_version(repo.path(), "sum", 1, 0, 3);
    testing::write_sum_version(repo.path(), "sum", 2, 0, 3);
    ASSERT_TRUE(registry.sync().ok());
    ASSERT_TRUE(registry.set_deployment("sum", Deployment::of({{1, 1}}), "test").ok());
  }
  void TearDown() override { log::set_min_level(log::Level::kInfo); }

  const Rollout& current() { return *registry.snapshot()->models.at("sum").control.rollout; }
  void answer(std::int64_t version, std::uint64_t n, Outcome outcome = Outcome::kOk) {
    auto m = metrics.version("sum", version);
    for (std::uint64_t i = 0; i < n; ++i) m->record(outcome, 0.001);
  }

  testing::TempDir repo;
  MetricsRegistry metrics;
  std::shared_ptr<LeaseStore> store = std::make_shared<LeaseStore>();
  ModelRegistry registry{repo.path(), metrics, store};
  RolloutDriver driver{registry, metrics, *store, std::chrono::milliseconds(100)};
};

TEST_F(RolloutDriverTest, AdvancesOnlyWithTheLeaseAndPromotesAtTheEnd) {
  RolloutPolicy p;
  p.shadow.reset();
  p.canary = {{50, 100}, 0, 10};
  ASSERT_TRUE(registry.start_rollout("sum", 2, p, "alice").ok());
  driver.tick();  // windows start here
  answer(1, 100);
  answer(2, 100);
  store->mine = false;
  driver.tick();
  EXPECT_EQ(current().stage, 0u);  // another replica drives it
  store->mine = true;
  driver.tick();  // taken over: its windows start afresh
  EXPECT_EQ(current().stage, 0u);
  answer(1, 100);
  answer(2, 100);
  driver.tick();
  EXPECT_EQ(current().stage, 1u);
  answer(2, 100);
  driver.tick();
  EXPECT_EQ(current().phase, RolloutPhase::kSucceeded);
  const auto& model = registry.snapshot()->models.at("sum");
  EXPECT_EQ(model.control.deployment.routes, (std::vector<Route>{{2, 1}}));
  EXPECT_EQ(current().timeline.back().actor, RolloutDriver::kActor);
}

TEST_F(RolloutDriverTest, RollsBackOnErrorsWithTheReasonInTheAuditLog) {
  RolloutPolicy p;
  p.shadow.reset();
  p.canary = {{50, 100}, 3600, 10};
  ASSERT_TRUE(registry.start_rollout("sum", 2, p, "alice").ok());
  driver.tick();
  answer(1, 200);
  answer(2, 180);
  answer(2, 20, Outcome::kServerError);
  driver.tick();
  EXPECT_EQ(current().phase, RolloutPhase::kRolledBack);
  EXPECT_EQ(registry.snapshot()->models.at("sum").control.deployment.routes,
            (std::vector<Route>{{1, 1}}));
  const auto audit = registry.audit();
  ASSERT_TRUE(audit.ok());
  EXPECT_EQ(audit->back().action, "rollout-rollback");
  EXPECT_EQ(audit->back().reason, current().reason);
  EXPECT_EQ(audit->back().reason.rfind("error ratio", 0), 0u) << audit->back().reason;
}

TEST_F(RolloutDriverTest, ACandidateThatStopsServingIsRolledBack) {
  RolloutPolicy p;
  p.shadow.reset();
  p.canary = {{50, 100}, 3600, 10};
  ASSERT_TRUE(registry.start_rollout("sum", 2, p, "alice").ok());
  std::filesystem::remove_all(repo.path() / "sum" / "2");
  ASSERT_TRUE(registry.sync().ok());
  driver.tick();
  EXPECT_EQ(current().phase, RolloutPhase::kRolledBack);
  EXPECT_EQ(current().reason, "version 2 stopped serving");
  EXPECT_EQ(registry.snapshot()->models.at("sum").control.deployment.routes,
            (std::vector<Route>{{1, 1}}));
}

TEST_F(RolloutDriverTest, AStepDecidedOnAnOlderStateIsRefused) {
  ASSERT_TRUE(registry.start_rollout("sum", 2, RolloutPolicy{}, "alice").ok());
  const std::int64_t revision = registry.snapshot()->models.at("sum").control.revision;
  ASSERT_TRUE(registry.step_rollout("sum", RolloutStep::kPause, "bob").ok());
  const auto stale =
      registry.step_rollout("sum", RolloutStep::kRollBack, "driver", "x", {}, revision);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(current().phase, RolloutPhase::kPaused);
}

TEST_F(RolloutDriverTest, StartingIsRefusedWhenItCannotMeanAnything) {
  EXPECT_EQ(registry.start_rollout("nope", 2, std::nullopt, "a").status().code(),
            StatusCode::kNotFound);
  EXPECT_FALSE(registry.start_rollout("sum", 1, std::nullopt, "a").ok());  // production
  EXPECT_EQ(registry.start_rollout("sum", 9, std::nullopt, "a").status().code(),
            StatusCode::kNotFound);
  ASSERT_TRUE(registry.set_deployment("sum", Deployment::of({{1, 1}, {2, 1}}), "a").ok());
  const auto split = registry.start_rollout("sum", 2, std::nullopt, "a");
  ASSERT_FALSE(split.ok());
  EXPECT_NE(split.status().message().find("splits its traffic"), std::string::npos);
}

TEST(RolloutDriverAutoStart, ANewVersionWithAPolicyIsHeldThenRolledOut) {
  log::set_min_level(log::Level::kError);
  testing::TempDir repo;
  MetricsRegistry metrics;
  auto store = std::make_shared<MemoryStateStore>();
  ModelRegistry registry(repo.path(), metrics, store);
  RolloutDriver driver(registry, metrics, *store, std::chrono::milliseconds(100));
  testing::write_sum_version(repo.path(), "sum", 1, 0, 3);
  ASSERT_TRUE(registry.sync().ok());
  testing::write_sum_version(repo.path(), "sum", 2, 0, 3);
  testing::write_file(repo.path() / "sum" / "2" / "model.yaml",
                      testing::sum_manifest() + "rollout: {shadow: false}\n");
  ASSERT_TRUE(registry.sync().ok());
  auto model = registry.snapshot()->models.at("sum");
  EXPECT_EQ(model.primary_versions(), (std::vector<std::int64_t>{1}));  // held
  driver.tick();
  model = registry.snapshot()->models.at("sum");
  ASSERT_TRUE(model.control.rollout.has_value());
  EXPECT_EQ(model.control.rollout->candidate, 2);
  EXPECT_EQ(model.control.rollout->timeline.front().actor, RolloutDriver::kActor);
  // Aborted, it is not started again by itself.
  ASSERT_TRUE(registry.step_rollout("sum", RolloutStep::kAbort, "alice").ok());
  driver.tick();
  EXPECT_EQ(registry.snapshot()->models.at("sum").control.rollout->phase, RolloutPhase::kAborted);
  log::set_min_level(log::Level::kInfo);
}

}  // namespace
}  // namespace forklift
