// Recent predictions by request id, so that a feedback label sent later can be joined with the
// prediction it scores. Only versions whose model.yaml declares `quality:` are kept.
//
// Bounded in bytes (oldest out first) and in age; sharded so that serving threads recording at
// once rarely wait on each other. A label for a prediction no longer here is "unmatched" (the
// prediction events still hold it for an offline join: docs/reference/events.md).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/feedback/quality_spec.h"
#include "forklift/types.h"

namespace forklift {

struct LoadedModel;

// What a version that learns online (LoadedModel::learner) needs to learn from a label: the
// prediction's rows. The version is held weakly: a label for a version unloaded since is not
// learned from.
struct LearningRows {
  std::weak_ptr<const LoadedModel> version;
  std::shared_ptr<const Schema> schema;  // what `rows` points at
  Batch rows;
  std::size_t bytes = 0;  // what the index counts for them
};

struct IndexedPrediction {
  std::string model_id;
  std::int64_t version = 0;
  QualitySpec quality;
  std::vector<double> outputs;  // one per row; NaN for a row whose output is not a number
  std::int64_t unix_ms = 0;
  std::shared_ptr<const LearningRows> learning;  // null unless the version learns online
};

class PredictionIndex {
 public:
  // Rows kept per prediction: a larger request is kept without the rest.
  static constexpr std::size_t kMaxRows = 1000;

  PredictionIndex(std::size_t max_bytes, std::chrono::seconds max_age);

  // Keeps the prediction; a request id seen before is replaced (the newest wins).
  void record(std::string_view request_id, std::string_view model_id, std::int64_t version,
              const QualitySpec& quality, const std::vector<Value>& outputs,
              std::shared_ptr<const LearningRows> learning = nullptr);
  // Takes the prediction out: each is joined with one label. With `model_id`, only a prediction
  // of that model is taken. A labeled prediction leaves a marker behind (kept, and bounded, like
  // a prediction), so a second label finds nothing here and `labeled_already`, if given, says
  // so: it must not be looked up elsewhere and counted twice.
  std::optional<IndexedPrediction> take(std::string_view request_id, std::string_view model_id = {},
                                        bool* labeled_already = nullptr);
  // Leaves the labeled marker for a prediction joined from elsewhere (the events database).
  void mark_labeled(std::string_view request_id, std::string_view model_id);
  // Whether a label was joined for `request_id` already (its marker is still kept).
  bool labeled(std::string_view request_id) const;

  // Puts back a prediction taken for a label that was then refused, so a corrected label can
  // still find it.
  void restore(std::string_view request_id, IndexedPrediction prediction);

  std::size_t bytes() const;
  std::size_t size() const;
  std::uint64_t evicted() const { return evicted_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    IndexedPrediction prediction;
    std::uint64_t sequence = 0;  // tells a replaced entry's stale place in `order` apart
    std::size_t bytes = 0;
    bool labeled = false;  // a marker: the prediction was joined with a label already
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry> entries;
    std::deque<std::pair<std::string, std::uint64_t>> order;  // oldest first
    std::size_t bytes = 0;
    std::uint64_t next_sequence = 0;
  };
  static constexpr std::size_t kShards = 16;

  Shard& shard_for(std::string_view request_id);
  void evict(Shard& shard, std::int64_t now_ms);  // under shard.mu
  void insert(std::string_view request_id, IndexedPrediction prediction, bool labeled = false);

  const std::size_t max_shard_bytes_;
  const std::int64_t max_age_ms_;
  std::array<Shard, kShards> shards_;
  std::atomic<std::uint64_t> evicted_{0};
};

}  // namespace forklift
