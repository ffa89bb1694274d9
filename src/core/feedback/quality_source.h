// Live quality of a version, as the rollout's quality guardrail reads it: an interface, so that
// rollouts (core/rollout/) need not know where labels come from (core/feedback/ provides it).
#pragma once

#include <cstdint>
#include <string>

namespace forklift {

// A version's quality metric over a window of labels.
struct QualityReading {
  std::int64_t labels = 0;
  double value = 0;
};

class QualitySource {
 public:
  virtual ~QualitySource() = default;
  // `metric`: mae, log_loss, accuracy or auc. Labels 0 when none have arrived, or when the
  // version's task has no such metric (an AUC of a regressor).
  virtual QualityReading quality(const std::string& model_id, std::int64_t version,
                                 const std::string& metric) const = 0;
};

}  // namespace forklift
