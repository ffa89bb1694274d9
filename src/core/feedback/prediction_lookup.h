// Where a label finds a prediction the server no longer holds in memory (too old, pushed out):
// the prediction events written to a database (store/postgres_prediction_lookup.h). An interface
// here, so the feedback service need not know about PostgreSQL.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "forklift/status.h"

namespace forklift {

struct LookedUpPrediction {
  std::string request_id;
  std::string model_id;
  std::int64_t version = 0;
  std::vector<double> outputs;  // one per row, in row order
};

class PredictionLookup {
 public:
  virtual ~PredictionLookup() = default;
  // The predictions recorded for `request_ids` (at most kMaxIds). Ids not found are left out;
  // Unavailable when the database cannot be asked now.
  static constexpr std::size_t kMaxIds = 1000;
  virtual Result<std::vector<LookedUpPrediction>> find(
      const std::vector<std::string>& request_ids) = 0;
};

}  // namespace forklift
