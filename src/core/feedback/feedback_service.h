// Feedback labels and the live quality they show (docs/how-to/send-feedback-labels.md): the
// inference path keeps each prediction of a version that declares `quality:` (prediction_index.h);
// a label sent later is joined with it by request id, scored into the version's window
// (quality_window.h), written as a feedback event, and shown in /metrics, the admin API and the
// rollout's quality guardrail.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/serial_worker.h"
#include "core/feedback/prediction_index.h"
#include "core/feedback/prediction_lookup.h"
#include "core/feedback/quality_source.h"
#include "core/feedback/quality_window.h"
#include "core/version_loader.h"
#include "observability/event_log.h"
#include "observability/metrics.h"

namespace forklift {

struct FeedbackItem {
  std::string request_id;
  std::vector<double> labels;  // one per row of the prediction
};

struct FeedbackOutcome {
  std::size_t matched = 0;    // joined with their prediction and scored
  std::size_t pending = 0;    // not in memory: being looked up in the events database
  std::size_t unmatched = 0;  // no prediction kept for them: too old, never kept, labeled already
  std::size_t refused = 0;    // wrong number of labels, or not 0/1 for a classifier
  std::vector<std::string> problems;  // the first few reasons, for the answer
};

struct FeedbackOptions {
  std::size_t index_bytes = 64u << 20;  // predictions kept for joining
  std::chrono::seconds max_age{7 * 24 * 3600};
  std::chrono::seconds window{3600};  // quality figures cover this much time
};

class FeedbackService final : public QualitySource {
 public:
  // `events` may be null: labels are then not written as events.
  FeedbackService(FeedbackOptions options, MetricsRegistry& metrics, EventLog* events);

  // The inference path: keeps the prediction when its version declares `quality:`, with its
  // rows when the version learns online (a label then teaches it: LoadedModel::learner).
  void record(const std::shared_ptr<const LoadedModel>& model, std::string_view request_id,
              const Batch& rows, const std::vector<Value>& outputs);
  // Joins and scores labels. `model_id`, if given, must be the predictions' model. A label whose
  // prediction is no longer in memory is looked up in the events database when one is set
  // (join_late_labels): counted `pending` here, scored (or counted unmatched) on a worker thread.
  FeedbackOutcome add(const std::vector<FeedbackItem>& items, std::string_view model_id = {});

  // Late labels: predictions that left memory are looked up through `lookup` (the prediction
  // events in PostgreSQL); `spec_of` says how a version's predictions are scored (its
  // model.yaml quality:, none when it is no longer loaded). Call before serving.
  void join_late_labels(std::unique_ptr<PredictionLookup> lookup,
                        std::function<QualitySpec(const std::string&, std::int64_t)> spec_of);

  QualityReading quality(const std::string& model_id, std::int64_t version,
                         const std::string& metric) const override;
  // Labels joined with predictions of `model_id` (every version) since this process started:
  // what a training schedule's label trigger counts.
  std::uint64_t labels_joined(std::string_view model_id) const;
  // Prometheus text: labels, coverage and the quality figures of every version labeled.
  void render(std::string& out) const;
  // "quality": [{"version", "task", "labels_total", "window_labels", "coverage", "mae", ...}]
  // for the admin API.
  void append_json(std::string& out, std::string_view model_id) const;

 private:
  struct VersionQuality {
    explicit VersionQuality(QualitySpec spec, std::int64_t window_ms) : window(spec, window_ms) {}
    QualityWindow window;
    std::atomic<std::uint64_t> labels{0};            // rows labeled, ever
    std::atomic<std::uint64_t> labeled_requests{0};  // predictions labeled, ever
  };
  using Key = std::pair<std::string, std::int64_t>;
  // The events-database lookup and its worker: one thread, a bounded queue of batches.
  struct LateJoin {
    LateJoin(std::unique_ptr<PredictionLookup> l,
             std::function<QualitySpec(const std::string&, std::int64_t)> s)
        : lookup(std::move(l)), spec_of(std::move(s)) {}
    std::unique_ptr<PredictionLookup> lookup;
    std::function<QualitySpec(const std::string&, std::int64_t)> spec_of;
    SerialWorker worker{kMaxPendingLookups};  // last: its thread uses the members above
  };
  static constexpr std::size_t kMaxPendingLookups = 64;  // batches of up to 1,000 labels

  std::shared_ptr<VersionQuality> quality_of(const IndexedPrediction& p);
  // Scores one label against its prediction (or refuses it, putting a prediction from memory
  // back), with its feedback event.
  void score(const FeedbackItem& item, IndexedPrediction p, FeedbackOutcome& out,
             bool restore_if_refused);
  void count_unmatched(const FeedbackItem& item, FeedbackOutcome& out);
  // Teaches the prediction's version its labels, when it learns online and is still loaded.
  void learn(const IndexedPrediction& p, const std::vector<double>& labels);
  void join_late(const std::vector<FeedbackItem>& items, const std::string& scope);
  std::map<Key, std::shared_ptr<VersionQuality>> versions() const;
  // Share of the version's successful requests that got a label (NaN before any answered).
  double coverage(const Key& key, const VersionQuality& q) const;

  const FeedbackOptions options_;
  MetricsRegistry& metrics_;
  EventLog* events_;
  PredictionIndex index_;
  mutable std::mutex mu_;
  std::map<Key, std::shared_ptr<VersionQuality>> versions_;  // guarded by mu_
  std::atomic<std::uint64_t> unmatched_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> late_matched_{0};
  std::atomic<std::uint64_t> pending_{0};
  std::atomic<std::uint64_t> learned_{0};         // rows an online version learned from
  std::atomic<std::uint64_t> learn_failures_{0};  // labels it could not learn from
  std::unique_ptr<LateJoin> late_join_;  // last: its worker stops first, before what it uses
};

}  // namespace forklift
