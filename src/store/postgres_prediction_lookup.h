// Finds the prediction events of given request ids in forklift_events (the PostgreSQL event
// sink's table, which has an index on request_id for this), for labels that arrive after the
// server has let the prediction go from memory. One connection of its own, opened on first use
// and again after a failure; called from the feedback service's worker thread only.
#pragma once

#include <chrono>
#include <string>

#include "core/feedback/prediction_lookup.h"
#include "store/pg.h"

namespace forklift {

class PostgresPredictionLookup final : public PredictionLookup {
 public:
  // Predictions older than `max_age` are not looked up (as they leave memory after it).
  PostgresPredictionLookup(std::string conninfo, std::chrono::seconds max_age)
      : conninfo_(std::move(conninfo)), max_age_(max_age) {}
  Result<std::vector<LookedUpPrediction>> find(
      const std::vector<std::string>& request_ids) override;

 private:
  std::string conninfo_;
  std::chrono::seconds max_age_;
  pg::Connection conn_;
};

}  // namespace forklift
