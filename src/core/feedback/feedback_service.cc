#include "core/feedback/feedback_service.h"

#include <algorithm>
#include <cmath>

#include "common/json_writer.h"
#include "common/value_bytes.h"
#include "common/wall_clock.h"
#include "core/version_loader.h"
#include "observability/log.h"

namespace forklift {
namespace {

constexpr std::size_t kMaxProblemsShown = 10;

void append_figure(std::string& out, const char* name, double value) {
  out += ",\"";
  out += name;
  out += "\":";
  json::append_double(out, value);
}

std::string labels_of(const std::string& model_id, std::int64_t version) {
  return "model_id=\"" + prometheus_label(model_id) + "\",version=\"" + std::to_string(version) +
         "\"";
}

}  // namespace

FeedbackService::FeedbackService(FeedbackOptions options, MetricsRegistry& metrics,
                                 EventLog* events)
    : options_(options),
      metrics_(metrics),
      events_(events),
      index_(options.index_bytes, options.max_age) {}

void FeedbackService::record(const std::shared_ptr<const LoadedModel>& model,
                             std::string_view request_id, const Batch& rows,
                             const std::vector<Value>& outputs) {
  if (!model->manifest.quality.enabled() || request_id.empty()) return;
  std::shared_ptr<const LearningRows> learning;
  if (model->learner != nullptr && rows.rows() <= PredictionIndex::kMaxRows) {
    auto l =
        std::make_shared<LearningRows>(LearningRows{model, model->schema, Batch(*model->schema)});
    l->rows.append_rows(rows);
    l->bytes = batch_bytes(l->rows) + sizeof(LearningRows);
    learning = std::move(l);
  }
  index_.record(request_id, model->model_id, model->version, model->manifest.quality, outputs,
                std::move(learning));
}

void FeedbackService::learn(const IndexedPrediction& p, const std::vector<double>& labels) {
  if (!p.learning) return;
  const std::shared_ptr<const LoadedModel> version = p.learning->version.lock();
  if (!version || version->learner == nullptr) return;  // unloaded since
  Status s = version->learner->learn(p.learning->rows, labels);
  if (s.ok()) {
    learned_.fetch_add(labels.size(), std::memory_order_relaxed);
  } else if (learn_failures_.fetch_add(1, std::memory_order_relaxed) == 0) {
    log::warn("online_learning_failed",
              {{"model_id", p.model_id}, {"version", p.version}, {"reason", s.message()}});
  }
}

std::shared_ptr<FeedbackService::VersionQuality> FeedbackService::quality_of(
    const IndexedPrediction& p) {
  std::lock_guard lock(mu_);
  auto& slot = versions_[{p.model_id, p.version}];
  if (!slot) {
    const auto window_ms = std::chrono::duration_cast<std::chrono::milliseconds>(options_.window);
    slot = std::make_shared<VersionQuality>(p.quality, window_ms.count());
  }
  return slot;
}

void FeedbackService::score(const FeedbackItem& item, IndexedPrediction p, FeedbackOutcome& out,
                            bool restore_if_refused) {
  std::string why;
  if (item.labels.size() != p.outputs.size()) {
    why = "request '" + item.request_id.substr(0, 128) + "' predicted " +
          std::to_string(p.outputs.size()) + " row(s); send one label per row";
  } else if (p.quality.task == QualitySpec::Task::kBinaryClassification) {
    for (double l : item.labels) {
      if (l != 0 && l != 1) {
        why = "model '" + p.model_id + "' is a binary classifier: labels must be 0 or 1";
      }
    }
  }
  if (!why.empty()) {
    ++out.refused;
    refused_.fetch_add(1, std::memory_order_relaxed);
    if (out.problems.size() < kMaxProblemsShown) out.problems.push_back(std::move(why));
    // A corrected label can still match.
    if (restore_if_refused) index_.restore(item.request_id, std::move(p));
    return;
  }
  const auto q = quality_of(p);
  const std::int64_t now = now_unix_ms();
  for (std::size_t r = 0; r < item.labels.size(); ++r) {
    q->window.add(p.outputs[r], item.labels[r], now);
  }
  q->labels.fetch_add(item.labels.size(), std::memory_order_relaxed);
  q->labeled_requests.fetch_add(1, std::memory_order_relaxed);
  ++out.matched;
  learn(p, item.labels);
  if (events_ != nullptr) {
    events_->offer(FeedbackEvent{std::chrono::system_clock::now(), item.request_id, true,
                                 p.model_id, p.version, item.labels, std::move(p.outputs)});
  }
}

void FeedbackService::count_unmatched(const FeedbackItem& item, FeedbackOutcome& out) {
  ++out.unmatched;
  unmatched_.fetch_add(1, std::memory_order_relaxed);
  if (events_ != nullptr) {
    events_->offer(FeedbackEvent{
        std::chrono::system_clock::now(), item.request_id, false, {}, 0, item.labels, {}});
  }
}

FeedbackOutcome FeedbackService::add(const std::vector<FeedbackItem>& items,
                                     std::string_view model_id) {
  FeedbackOutcome out;
  std::vector<FeedbackItem> late;  // not in memory: for the events database, if there is one
  for (const FeedbackItem& item : items) {
    bool labeled_already = false;
    if (std::optional<IndexedPrediction> p =
            index_.take(item.request_id, model_id, &labeled_already)) {
      score(item, std::move(*p), out, true);
    } else if (late_join_ != nullptr && !labeled_already) {
      late.push_back(item);
    } else {
      count_unmatched(item, out);
    }
  }
  for (std::size_t begin = 0; begin < late.size(); begin += PredictionLookup::kMaxIds) {
    const std::size_t end = std::min(late.size(), begin + PredictionLookup::kMaxIds);
    std::vector<FeedbackItem> batch(late.begin() + static_cast<std::ptrdiff_t>(begin),
                                    late.begin() + static_cast<std::ptrdiff_t>(end));
    const std::size_t n = batch.size();
    auto task = [this, batch = std::move(batch), scope = std::string(model_id)]() {
      join_late(batch, scope);
    };
    if (late_join_->worker.submit(std::move(task))) {
      out.pending += n;
      pending_.fetch_add(n, std::memory_order_relaxed);
    } else {
      // The lookups waiting already hold as much as they may: these labels are not looked up.
      for (std::size_t i = begin; i < end; ++i) count_unmatched(late[i], out);
    }
  }
  return out;
}

void FeedbackService::join_late(const std::vector<FeedbackItem>& items, const std::string& scope) {
  std::vector<std::string> ids;
  ids.reserve(items.size());
  for (const FeedbackItem& item : items) ids.push_back(item.request_id);
  auto found = late_join_->lookup->find(ids);
  std::map<std::string, LookedUpPrediction, std::less<>> by_id;
  if (found.ok()) {
    for (LookedUpPrediction& p : *found) by_id.emplace(p.request_id, std::move(p));
  } else {
    log::warn("late_labels_not_joined", {{"labels", static_cast<std::int64_t>(items.size())},
                                         {"reason", found.status().message()}});
  }
  FeedbackOutcome out;
  for (const FeedbackItem& item : items) {
    // A label for a prediction labeled meanwhile (in memory, or earlier in this batch) is not
    // counted twice.
    const auto it = index_.labeled(item.request_id) ? by_id.end() : by_id.find(item.request_id);
    const QualitySpec spec = it == by_id.end()
                                 ? QualitySpec{}
                                 : late_join_->spec_of(it->second.model_id, it->second.version);
    if (it == by_id.end() || !spec.enabled() || (!scope.empty() && it->second.model_id != scope)) {
      count_unmatched(item, out);
      continue;
    }
    LookedUpPrediction& p = it->second;
    const std::size_t matched = out.matched;
    score(item, IndexedPrediction{p.model_id, p.version, spec, p.outputs, 0, nullptr}, out, false);
    if (out.matched > matched) index_.mark_labeled(item.request_id, p.model_id);
  }
  late_matched_.fetch_add(out.matched, std::memory_order_relaxed);
  pending_.fetch_sub(items.size(), std::memory_order_relaxed);
}

void FeedbackService::join_late_labels(
    std::unique_ptr<PredictionLookup> lookup,
    std::function<QualitySpec(const std::string&, std::int64_t)> spec_of) {
  late_join_ = std::make_unique<LateJoin>(std::move(lookup), std::move(spec_of));
}

double FeedbackService::coverage(const Key& key, const VersionQuality& q) const {
  const auto answered = metrics_.version(key.first, key.second)->ok.load(std::memory_order_relaxed);
  const auto labeled = q.labeled_requests.load(std::memory_order_relaxed);
  return answered == 0
             ? std::nan("")
             : std::min(1.0, static_cast<double>(labeled) / static_cast<double>(answered));
}

std::map<FeedbackService::Key, std::shared_ptr<FeedbackService::VersionQuality>>
FeedbackService::versions() const {
  std::lock_guard lock(mu_);
  return versions_;
}

std::uint64_t FeedbackService::labels_joined(std::string_view model_id) const {
  std::lock_guard lock(mu_);
  std::uint64_t total = 0;
  for (const auto& [key, q] : versions_) {
    if (key.first == model_id) total += q->labels.load(std::memory_order_relaxed);
  }
  return total;
}

QualityReading FeedbackService::quality(const std::string& model_id, std::int64_t version,
                                        const std::string& metric) const {
  std::shared_ptr<VersionQuality> q;
  {
    std::lock_guard lock(mu_);
    const auto it = versions_.find({model_id, version});
    if (it == versions_.end()) return {};
    q = it->second;
  }
  const QualityFigures f = q->window.read(now_unix_ms());
  const double value = metric == "mae"        ? f.mae
                       : metric == "log_loss" ? f.log_loss
                       : metric == "accuracy" ? f.accuracy
                       : metric == "auc"      ? f.auc
                                              : std::nan("");
  // A metric the version's task does not have (MAE asked of a classifier is fine; AUC of a
  // regressor is not) counts as no labels: the guardrail then never judges it.
  const bool binary_only = metric == "log_loss" || metric == "accuracy" || metric == "auc";
  if (!std::isfinite(value) ||
      (binary_only && q->window.spec().task != QualitySpec::Task::kBinaryClassification)) {
    return {};
  }
  return {static_cast<std::int64_t>(f.labels), value};
}

void FeedbackService::render(std::string& out) const {
  const auto all = versions();
  const std::int64_t now = now_unix_ms();
  out +=
      "# HELP forklift_feedback_labels_total Feedback labels joined with their prediction, by "
      "version (rows).\n# TYPE forklift_feedback_labels_total counter\n";
  for (const auto& [key, q] : all) {
    out += "forklift_feedback_labels_total{" + labels_of(key.first, key.second) + "} " +
           std::to_string(q->labels.load(std::memory_order_relaxed)) + "\n";
  }
  out +=
      "# HELP forklift_feedback_unmatched_total Labels for which no prediction was kept (too "
      "old, never kept, or labeled already).\n# TYPE forklift_feedback_unmatched_total counter\n"
      "forklift_feedback_unmatched_total " +
      std::to_string(unmatched_.load(std::memory_order_relaxed)) +
      "\n# HELP forklift_feedback_refused_total Labels refused (wrong count, not 0/1 for a "
      "classifier).\n# TYPE forklift_feedback_refused_total counter\n"
      "forklift_feedback_refused_total " +
      std::to_string(refused_.load(std::memory_order_relaxed)) +
      "\n# HELP forklift_feedback_late_matched_total Labels joined with a prediction found in the "
      "events database (it had left memory).\n# TYPE forklift_feedback_late_matched_total counter\n"
      "forklift_feedback_late_matched_total " +
      std::to_string(late_matched_.load(std::memory_order_relaxed)) +
      "\n# HELP forklift_feedback_pending Labels waiting for a lookup in the events database.\n"
      "# TYPE forklift_feedback_pending gauge\nforklift_feedback_pending " +
      std::to_string(pending_.load(std::memory_order_relaxed)) +
      "\n# HELP forklift_feedback_index_bytes Memory the predictions kept for joining take.\n"
      "# TYPE forklift_feedback_index_bytes gauge\nforklift_feedback_index_bytes " +
      std::to_string(index_.bytes()) +
      "\n# HELP forklift_feedback_index_evicted_total Predictions dropped unlabeled (memory or "
      "age bound).\n# TYPE forklift_feedback_index_evicted_total counter\n"
      "forklift_feedback_index_evicted_total " +
      std::to_string(index_.evicted()) + "\n";
  const auto gauge = [&](const char* name, const char* help, auto value_of, bool binary_only) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n";
    for (const auto& [key, q] : all) {
      const bool binary = q->window.spec().task == QualitySpec::Task::kBinaryClassification;
      if (binary_only && !binary) continue;
      const double v = value_of(key, *q, q->window.read(now));
      if (!std::isfinite(v)) continue;
      std::string line = std::string(name) + "{" + labels_of(key.first, key.second) + "} ";
      json::append_double(line, v);
      out += line + "\n";
    }
  };
  using F = QualityFigures;
  using Q = VersionQuality;
  gauge(
      "forklift_quality_window_labels", "Labels in the quality window.",
      [](const Key&, const Q&, const F& f) { return static_cast<double>(f.labels); }, false);
  gauge(
      "forklift_quality_label_coverage",
      "Share of the version's successful requests that received a label, since the server "
      "started.",
      [this](const Key& key, const Q& q, const F&) { return coverage(key, q); }, false);
  gauge(
      "forklift_quality_mae", "Mean absolute error over the window.",
      [](const Key&, const Q&, const F& f) { return f.labels ? f.mae : std::nan(""); }, false);
  gauge(
      "forklift_quality_bias", "Mean of prediction minus label over the window.",
      [](const Key&, const Q&, const F& f) { return f.labels ? f.bias : std::nan(""); }, false);
  gauge(
      "forklift_quality_log_loss", "Log loss over the window (binary classifiers).",
      [](const Key&, const Q&, const F& f) { return f.labels ? f.log_loss : std::nan(""); }, true);
  gauge(
      "forklift_quality_accuracy", "Accuracy at the threshold over the window.",
      [](const Key&, const Q&, const F& f) { return f.labels ? f.accuracy : std::nan(""); }, true);
  gauge(
      "forklift_quality_auc", "Area under the ROC curve over the window.",
      [](const Key&, const Q&, const F& f) { return f.auc; }, true);
}

void FeedbackService::append_json(std::string& out, std::string_view model_id) const {
  const auto all = versions();
  const std::int64_t now = now_unix_ms();
  out += "\"quality\":[";
  bool first = true;
  for (const auto& [key, q] : all) {
    if (key.first != model_id) continue;
    if (!first) out.push_back(',');
    first = false;
    const QualityFigures f = q->window.read(now);
    out += "{\"version\":";
    json::append_int(out, key.second);
    out += ",\"task\":";
    json::append_string(out, task_name(q->window.spec().task));
    out += ",\"labels_total\":";
    json::append_int(out, static_cast<std::int64_t>(q->labels.load(std::memory_order_relaxed)));
    out += ",\"window_labels\":";
    json::append_int(out, static_cast<std::int64_t>(f.labels));
    append_figure(out, "coverage", coverage(key, *q));
    if (f.labels > 0) {
      append_figure(out, "mae", f.mae);
      append_figure(out, "bias", f.bias);
      if (q->window.spec().task == QualitySpec::Task::kBinaryClassification) {
        append_figure(out, "log_loss", f.log_loss);
        append_figure(out, "accuracy", f.accuracy);
        append_figure(out, "auc", f.auc);
      }
    }
    out.push_back('}');
  }
  out.push_back(']');
}

}  // namespace forklift
