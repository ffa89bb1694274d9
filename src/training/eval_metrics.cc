#include "training/eval_metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace forklift::training {
namespace {

bool binary_labels(const std::vector<double>& labels) {
  return std::all_of(labels.begin(), labels.end(), [](double y) { return y == 0 || y == 1; });
}

double auc(const std::vector<double>& p, const std::vector<double>& y) {
  std::vector<std::size_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] < p[b]; });
  // Mann-Whitney: the sum of the positives' ranks, ties given their average rank.
  double positive_rank_sum = 0;
  std::size_t i = 0;
  while (i < order.size()) {
    std::size_t j = i;
    while (j < order.size() && p[order[j]] == p[order[i]]) ++j;
    const double rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (std::size_t k = i; k < j; ++k) {
      if (y[order[k]] == 1) positive_rank_sum += rank;
    }
    i = j;
  }
  const double positives = std::count(y.begin(), y.end(), 1.0);
  const double negatives = static_cast<double>(y.size()) - positives;
  return (positive_rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

}  // namespace

Result<double> evaluate(const std::string& metric, const std::vector<double>& predictions,
                        const std::vector<double>& labels, double threshold) {
  if (predictions.empty() || predictions.size() != labels.size()) {
    return InvalidArgument("evaluation needs one prediction per label, and at least one");
  }
  for (double p : predictions) {
    if (!std::isfinite(p)) return InvalidArgument("a prediction is not a finite number");
  }
  const auto n = static_cast<double>(labels.size());
  if (metric == "rmse" || metric == "mae") {
    double sum = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      const double e = predictions[i] - labels[i];
      sum += metric == "rmse" ? e * e : std::fabs(e);
    }
    return metric == "rmse" ? std::sqrt(sum / n) : sum / n;
  }
  if (metric != "logloss" && metric != "auc" && metric != "accuracy") {
    return InvalidArgument("unknown metric '" + metric + "' (rmse, mae, logloss, auc, accuracy)");
  }
  if (!binary_labels(labels)) {
    return InvalidArgument(metric + " needs labels 0 and 1 (a binary classifier's)");
  }
  if (metric == "logloss") {
    double sum = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      const double p = std::clamp(predictions[i], 1e-15, 1 - 1e-15);
      sum -= labels[i] == 1 ? std::log(p) : std::log(1 - p);
    }
    return sum / n;
  }
  if (metric == "accuracy") {
    double right = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      right += (predictions[i] >= threshold) == (labels[i] == 1) ? 1 : 0;
    }
    return right / n;
  }
  const double positives = std::count(labels.begin(), labels.end(), 1.0);
  if (positives == 0 || positives == n)
    return InvalidArgument("auc needs both classes in the labels");
  return auc(predictions, labels);
}

}  // namespace forklift::training
