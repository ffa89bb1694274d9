#include "core/feedback/quality_window.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace forklift {
namespace {

constexpr double kEpsilon = 1e-15;  // log loss clamps probabilities to [eps, 1 - eps]

std::size_t score_bin(double p) {
  const double clamped = std::clamp(p, 0.0, 1.0);
  return std::min(QualityWindow::kScoreBins - 1,
                  static_cast<std::size_t>(clamped * QualityWindow::kScoreBins));
}

}  // namespace

QualityWindow::QualityWindow(QualitySpec spec, std::int64_t window_ms)
    : spec_(spec), buckets_(kBuckets, window_ms) {}

void QualityWindow::add(double prediction, double label, std::int64_t now_ms) {
  if (!std::isfinite(prediction) || !std::isfinite(label)) return;
  std::lock_guard lock(mu_);
  Bucket& b = buckets_.current(now_ms, [](Bucket& stale) { stale = Bucket{}; });
  ++b.n;
  const double error = prediction - label;
  b.abs_error += std::fabs(error);
  b.error += error;
  if (spec_.task == QualitySpec::Task::kBinaryClassification) {
    const double p = std::clamp(prediction, kEpsilon, 1 - kEpsilon);
    b.log_loss += label >= 0.5 ? -std::log(p) : -std::log(1 - p);
    const bool predicted = prediction >= spec_.threshold;
    if (predicted == (label >= 0.5)) ++b.correct;
    if (b.positives.empty()) {
      b.positives.assign(kScoreBins, 0);
      b.negatives.assign(kScoreBins, 0);
    }
    ++(label >= 0.5 ? b.positives : b.negatives)[score_bin(prediction)];
  }
}

QualityFigures QualityWindow::read(std::int64_t now_ms) const {
  QualityFigures f;
  double abs_error = 0, error = 0, log_loss = 0;
  std::uint64_t correct = 0;
  std::vector<std::uint64_t> pos(kScoreBins, 0), neg(kScoreBins, 0);
  std::lock_guard lock(mu_);
  buckets_.for_each_in_window(now_ms, [&](const Bucket& b) {
    f.labels += b.n;
    abs_error += b.abs_error;
    error += b.error;
    log_loss += b.log_loss;
    correct += b.correct;
    for (std::size_t i = 0; i < b.positives.size(); ++i) {
      pos[i] += b.positives[i];
      neg[i] += b.negatives[i];
    }
  });
  if (f.labels == 0) return f;
  const double n = static_cast<double>(f.labels);
  f.mae = abs_error / n;
  f.bias = error / n;
  if (spec_.task != QualitySpec::Task::kBinaryClassification) return f;
  f.log_loss = log_loss / n;
  f.accuracy = static_cast<double>(correct) / n;
  // AUC: the chance that a random positive scores above a random negative, from the bins.
  double total_pos = 0, total_neg = 0, wins = 0, negatives_below = 0;
  for (std::size_t i = 0; i < kScoreBins; ++i) {
    const double p = static_cast<double>(pos[i]);
    const double q = static_cast<double>(neg[i]);
    wins += p * (negatives_below + q / 2);
    negatives_below += q;
    total_pos += p;
    total_neg += q;
  }
  f.auc = total_pos > 0 && total_neg > 0 ? wins / (total_pos * total_neg)
                                         : std::numeric_limits<double>::quiet_NaN();
  return f;
}

}  // namespace forklift
