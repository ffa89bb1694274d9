// Feedback (core/feedback/): the prediction index's bounds, the quality window's figures and
// its sliding, and the service joining labels with predictions.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "core/feedback/feedback_service.h"
#include "core/feedback/prediction_index.h"
#include "core/feedback/quality_window.h"

namespace forklift {
namespace {

const QualitySpec kRegression{QualitySpec::Task::kRegression, 0.5};
const QualitySpec kBinary{QualitySpec::Task::kBinaryClassification, 0.5};

// A loaded version as the feedback service sees it: its name and its quality: section.
std::shared_ptr<const LoadedModel> version_of(std::string model_id, std::int64_t version,
                                              QualitySpec quality) {
  auto model = std::make_shared<LoadedModel>();
  model->model_id = std::move(model_id);
  model->version = version;
  model->manifest.quality = quality;
  model->schema = std::make_shared<const Schema>();
  return model;
}

// Records a prediction of `model` (its rows are not needed: it does not learn).
void record(FeedbackService& service, const std::shared_ptr<const LoadedModel>& model,
            std::string_view request_id, const std::vector<Value>& outputs) {
  service.record(model, request_id, Batch(*model->schema), outputs);
}

TEST(PredictionIndex, KeepsTakesOnceAndScopesByModel) {
  PredictionIndex index(1 << 20, std::chrono::seconds(3600));
  index.record("r1", "eta", 2, kRegression, {Value(1.5), Value(std::int64_t{3})});
  index.record("", "eta", 2, kRegression, {Value(1.0)});  // no id: nothing to join by
  EXPECT_EQ(index.size(), 1u);
  EXPECT_FALSE(index.take("r1", "fraud").has_value());  // another model's
  auto p = index.take("r1", "eta");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->version, 2);
  EXPECT_EQ(p->outputs, (std::vector<double>{1.5, 3.0}));
  EXPECT_FALSE(index.take("r1").has_value());  // taken: a second label finds nothing
  // A marker of it stays (a few hundred bytes), so a second label is known to be one.
  EXPECT_GT(index.bytes(), 0u);
  EXPECT_LT(index.bytes(), 400u);
}

TEST(PredictionIndex, ANonNumericOutputIsKeptAsNaN) {
  PredictionIndex index(1 << 20, std::chrono::seconds(3600));
  index.record("r", "m", 1, kRegression, {Value(std::string("cat"))});
  auto p = index.take("r");
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(std::isnan(p->outputs[0]));
}

TEST(PredictionIndex, StaysWithinItsBytesOldestOutFirst) {
  PredictionIndex index(64 << 10, std::chrono::seconds(3600));
  for (int i = 0; i < 20000; ++i) {
    index.record("request-" + std::to_string(i), "m", 1, kRegression, {Value(1.0)});
    // Taking most of them leaves stale places in the eviction order: still bounded.
    if (i % 3) index.take("request-" + std::to_string(i));
  }
  EXPECT_LE(index.bytes(), 64u << 10);
  EXPECT_GT(index.evicted(), 0u);
  EXPECT_TRUE(index.take("request-19998").has_value());
  EXPECT_FALSE(index.take("request-0").has_value());
}

TEST(PredictionIndex, ReplacesARequestIdSeenAgain) {
  PredictionIndex index(1 << 20, std::chrono::seconds(3600));
  index.record("same", "m", 1, kRegression, {Value(1.0)});
  index.record("same", "m", 2, kRegression, {Value(2.0)});
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.take("same")->version, 2);
}

TEST(PredictionIndex, ForgetsWhatIsOlderThanItsAge) {
  PredictionIndex index(1 << 20, std::chrono::seconds(0));
  index.record("old", "m", 1, kRegression, {Value(1.0)});
  // Age 0: gone by the next look (or still there within the same millisecond).
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(index.take("old").has_value());
}

TEST(QualityWindow, RegressionMaeAndBias) {
  QualityWindow w(kRegression, 60'000);
  w.add(5, 4, 1000);
  w.add(5, 7, 1000);
  w.add(std::nan(""), 7, 1000);  // not counted
  const QualityFigures f = w.read(1000);
  EXPECT_EQ(f.labels, 2u);
  EXPECT_DOUBLE_EQ(f.mae, 1.5);
  EXPECT_DOUBLE_EQ(f.bias, -0.5);
}

TEST(QualityWindow, BinaryLogLossAccuracyAndAuc) {
  QualityWindow w(kBinary, 60'000);
  // A perfect ranking: every positive above every negative.
  for (int i = 0; i < 10; ++i) {
    w.add(0.9, 1, 0);
    w.add(0.2, 0, 0);
  }
  QualityFigures f = w.read(0);
  EXPECT_DOUBLE_EQ(f.accuracy, 1.0);
  EXPECT_DOUBLE_EQ(f.auc, 1.0);
  EXPECT_NEAR(f.log_loss, (-std::log(0.9) - std::log(0.8)) / 2, 1e-12);
  // The reverse ranking.
  QualityWindow bad(kBinary, 60'000);
  bad.add(0.1, 1, 0);
  bad.add(0.7, 0, 0);
  f = bad.read(0);
  EXPECT_DOUBLE_EQ(f.auc, 0.0);
  EXPECT_DOUBLE_EQ(f.accuracy, 0.0);
  // One class only: no AUC.
  QualityWindow one(kBinary, 60'000);
  one.add(0.7, 1, 0);
  EXPECT_TRUE(std::isnan(one.read(0).auc));
  // Certain and wrong: log loss is large but finite.
  one.add(0.0, 1, 0);
  EXPECT_TRUE(std::isfinite(one.read(0).log_loss));
}

TEST(QualityWindow, OldLabelsSlideOut) {
  QualityWindow w(kRegression, 60'000);  // 60 buckets of a second
  w.add(1, 0, 0);
  w.add(3, 0, 30'000);
  EXPECT_EQ(w.read(30'000).labels, 2u);
  EXPECT_EQ(w.read(61'000).labels, 1u);
  EXPECT_DOUBLE_EQ(w.read(61'000).mae, 3);
  EXPECT_EQ(w.read(200'000).labels, 0u);
  w.add(2, 0, 200'000);  // reuses a bucket: the old sums do not come back
  EXPECT_DOUBLE_EQ(w.read(200'000).mae, 2);
}

TEST(FeedbackService, JoinsScoresAndRefuses) {
  MetricsRegistry metrics;
  FeedbackService service(FeedbackOptions{}, metrics, nullptr);
  const auto model = version_of("churn", 3, kBinary);
  record(service, model, "a", {Value(0.8)});
  record(service, model, "b", {Value(0.8), Value(0.1)});
  record(service, model, "c", {Value(0.3)});
  const FeedbackOutcome out = service.add({{"a", {1}}, {"b", {1}}, {"c", {2}}, {"zzz", {1}}});
  EXPECT_EQ(out.matched, 1u);
  EXPECT_EQ(out.refused, 2u);
  EXPECT_EQ(out.unmatched, 1u);
  ASSERT_EQ(out.problems.size(), 2u);
  EXPECT_NE(out.problems[0].find("2 row(s)"), std::string::npos);
  EXPECT_NE(out.problems[1].find("0 or 1"), std::string::npos);
  const QualityReading r = service.quality("churn", 3, "accuracy");
  EXPECT_EQ(r.labels, 1);
  EXPECT_DOUBLE_EQ(r.value, 1);
  EXPECT_EQ(service.quality("churn", 3, "mae").labels, 1);
  EXPECT_EQ(service.quality("churn", 4, "accuracy").labels, 0);

  const auto plain = version_of("plain", 1, QualitySpec{});  // no quality: not kept
  record(service, plain, "p", {Value(1.0)});
  EXPECT_EQ(service.add({{"p", {1}}}).unmatched, 1u);
  std::string text;
  service.render(text);
  EXPECT_NE(text.find("forklift_quality_accuracy{model_id=\"churn\",version=\"3\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("forklift_feedback_unmatched_total 2"), std::string::npos);
}

TEST(FeedbackService, ARefusedLabelLeavesItsPredictionForACorrectedOne) {
  MetricsRegistry metrics;
  FeedbackService service(FeedbackOptions{}, metrics, nullptr);
  const auto model = version_of("eta", 1, kRegression);
  record(service, model, "three", {Value(1.0), Value(2.0), Value(3.0)});
  EXPECT_EQ(service.add({{"three", {1, 2}}}).refused, 1u);
  EXPECT_EQ(service.add({{"three", {1, 2, 3}}}).matched, 1u);
  EXPECT_EQ(service.quality("eta", 1, "mae").value, 0);
}

// Answers from a fixed table, as the events database would.
class FakeLookup final : public PredictionLookup {
 public:
  Result<std::vector<LookedUpPrediction>> find(const std::vector<std::string>& ids) override {
    std::vector<LookedUpPrediction> out;
    for (const auto& id : ids) {
      if (id == "old") out.push_back({"old", "eta", 1, {3.0}});
      if (id == "unloaded") out.push_back({"unloaded", "eta", 9, {3.0}});
    }
    return out;
  }
};

TEST(FeedbackService, ALateLabelIsJoinedThroughTheEventsDatabase) {
  MetricsRegistry metrics;
  FeedbackService service(FeedbackOptions{}, metrics, nullptr);
  service.join_late_labels(std::make_unique<FakeLookup>(),
                           [](const std::string&, std::int64_t version) {
                             return version == 1 ? kRegression : QualitySpec{};
                           });
  const FeedbackOutcome out = service.add({{"old", {1}}, {"unloaded", {1}}, {"nowhere", {1}}});
  EXPECT_EQ(out.pending, 3u);
  EXPECT_EQ(out.matched, 0u);
  for (int i = 0; i < 500 && service.quality("eta", 1, "mae").labels == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const QualityReading r = service.quality("eta", 1, "mae");
  EXPECT_EQ(r.labels, 1);
  EXPECT_DOUBLE_EQ(r.value, 2);
  std::string text;
  for (int i = 0; i < 500; ++i) {
    text.clear();
    service.render(text);
    if (text.find("forklift_feedback_pending 0") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_NE(text.find("forklift_feedback_late_matched_total 1"), std::string::npos) << text;
  EXPECT_NE(text.find("forklift_feedback_unmatched_total 2"), std::string::npos) << text;
  // Labeled once: a second label is not looked up again and counted twice.
  const FeedbackOutcome again = service.add({{"old", {1}}});
  EXPECT_EQ(again.pending, 0u);
  EXPECT_EQ(again.unmatched, 1u);
}

TEST(FeedbackService, ALabeledPredictionIsNotLookedUpElsewhere) {
  MetricsRegistry metrics;
  FeedbackService service(FeedbackOptions{}, metrics, nullptr);
  service.join_late_labels(std::make_unique<FakeLookup>(),
                           [](const std::string&, std::int64_t) { return kRegression; });
  const auto model = version_of("eta", 1, kRegression);
  record(service, model, "old", {Value(5.0)});
  EXPECT_EQ(service.add({{"old", {1}}}).matched, 1u);
  const FeedbackOutcome again = service.add({{"old", {1}}});
  EXPECT_EQ(again.pending, 0u);
  EXPECT_EQ(again.unmatched, 1u);
}

TEST(FeedbackService, AMetricTheTaskLacksIsNeverJudged) {
  MetricsRegistry metrics;
  FeedbackService service(FeedbackOptions{}, metrics, nullptr);
  const auto model = version_of("eta", 1, kRegression);
  record(service, model, "a", {Value(3.0)});
  ASSERT_EQ(service.add({{"a", {1}}}).matched, 1u);
  EXPECT_EQ(service.quality("eta", 1, "auc").labels, 0);
  EXPECT_EQ(service.quality("eta", 1, "mae").labels, 1);
}

}  // namespace
}  // namespace forklift
