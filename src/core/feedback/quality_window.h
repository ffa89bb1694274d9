// Live quality of one version over a sliding window of labels, in bounded memory: the window is
// cut into buckets of sums (and, for classifiers, a histogram of scores per class for the AUC),
// and a bucket that falls out of the window is reused. No label is kept.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <vector>

#include "common/sliding_buckets.h"
#include "core/feedback/quality_spec.h"

namespace forklift {

struct QualityFigures {
  std::uint64_t labels = 0;  // in the window
  // Regression.
  double mae = 0;
  double bias = 0;  // mean of prediction - label: positive predicts too high
  // Binary classification.
  double log_loss = 0;
  double accuracy = 0;  // at the spec's threshold
  double auc = 0;       // from scores binned in hundredths (ties within a bin count half)
};

class QualityWindow {
 public:
  static constexpr std::size_t kBuckets = 60;
  static constexpr std::size_t kScoreBins = 100;

  // `window_ms`: how far back labels count (cut into kBuckets).
  QualityWindow(QualitySpec spec, std::int64_t window_ms);

  // A label for a prediction, counted at `now_ms`. Binary labels must be 0 or 1 (checked by the
  // caller); a NaN prediction is not counted.
  void add(double prediction, double label, std::int64_t now_ms);
  QualityFigures read(std::int64_t now_ms) const;
  const QualitySpec& spec() const { return spec_; }

 private:
  struct Bucket {
    std::uint64_t n = 0;
    double abs_error = 0;
    double error = 0;
    double log_loss = 0;
    std::uint64_t correct = 0;
    std::vector<std::uint32_t> positives;  // per score bin (classifiers only)
    std::vector<std::uint32_t> negatives;
  };

  const QualitySpec spec_;
  mutable std::mutex mu_;
  SlidingBuckets<Bucket> buckets_;  // guarded by mu_
};

}  // namespace forklift
