#include "core/feedback/prediction_index.h"

#include <functional>
#include <limits>

#include "common/wall_clock.h"

namespace forklift {
namespace {

// What one entry costs in the map: its id, the outputs, the model id and the containers' own
// overhead; and its place in the eviction order, which outlives an entry taken or replaced
// until it reaches the front, and is counted until then.
std::size_t entry_bytes(std::size_t id, std::size_t model_id, std::size_t rows) {
  return id + model_id + rows * sizeof(double) + 112;
}
std::size_t order_bytes(std::size_t id) {
  return id + 48;
}

}  // namespace

PredictionIndex::PredictionIndex(std::size_t max_bytes, std::chrono::seconds max_age)
    : max_shard_bytes_(max_bytes / kShards), max_age_ms_(max_age.count() * 1000) {}

PredictionIndex::Shard& PredictionIndex::shard_for(std::string_view request_id) {
  return shards_[std::hash<std::string_view>{}(request_id) % kShards];
}

void PredictionIndex::evict(Shard& s, std::int64_t now_ms) {
  while (!s.order.empty()) {
    auto& [id, sequence] = s.order.front();
    const auto it = s.entries.find(id);
    const bool stale = it == s.entries.end() || it->second.sequence != sequence;
    if (!stale) {
      const bool too_big = s.bytes > max_shard_bytes_;
      const bool too_old = now_ms - it->second.prediction.unix_ms > max_age_ms_;
      if (!too_big && !too_old) return;
      s.bytes -= it->second.bytes;
      s.entries.erase(it);
      evicted_.fetch_add(1, std::memory_order_relaxed);
    }
    s.bytes -= order_bytes(id.size());
    s.order.pop_front();
  }
}

void PredictionIndex::record(std::string_view request_id, std::string_view model_id,
                             std::int64_t version, const QualitySpec& quality,
                             const std::vector<Value>& outputs,
                             std::shared_ptr<const LearningRows> learning) {
  if (request_id.empty()) return;
  IndexedPrediction p{std::string(model_id), version, quality, {}, now_unix_ms(),
                      std::move(learning)};
  const std::size_t rows = std::min(outputs.size(), kMaxRows);
  p.outputs.reserve(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    const auto* d = std::get_if<double>(&outputs[r]);
    const auto* i = std::get_if<std::int64_t>(&outputs[r]);
    p.outputs.push_back(d   ? *d
                        : i ? static_cast<double>(*i)
                            : std::numeric_limits<double>::quiet_NaN());
  }
  insert(request_id, std::move(p));
}

void PredictionIndex::restore(std::string_view request_id, IndexedPrediction prediction) {
  insert(request_id, std::move(prediction));
}

void PredictionIndex::mark_labeled(std::string_view request_id, std::string_view model_id) {
  insert(request_id, IndexedPrediction{std::string(model_id), 0, {}, {}, now_unix_ms(), nullptr},
         true);
}

void PredictionIndex::insert(std::string_view request_id, IndexedPrediction p, bool labeled) {
  const std::size_t bytes = entry_bytes(request_id.size(), p.model_id.size(), p.outputs.size()) +
                            (p.learning ? p.learning->bytes : 0);
  if (bytes + order_bytes(request_id.size()) > max_shard_bytes_) return;  // not even alone
  Shard& s = shard_for(request_id);
  std::lock_guard lock(s.mu);
  const std::uint64_t sequence = s.next_sequence++;
  std::string id(request_id);
  auto [it, inserted] = s.entries.try_emplace(id);
  if (!inserted) s.bytes -= it->second.bytes;
  const std::int64_t now = now_unix_ms();
  it->second = Entry{std::move(p), sequence, bytes, labeled};
  s.bytes += bytes + order_bytes(id.size());
  s.order.emplace_back(std::move(id), sequence);
  evict(s, now);
}

std::optional<IndexedPrediction> PredictionIndex::take(std::string_view request_id,
                                                       std::string_view model_id,
                                                       bool* labeled_already) {
  Shard& s = shard_for(request_id);
  std::lock_guard lock(s.mu);
  evict(s, now_unix_ms());
  const auto it = s.entries.find(std::string(request_id));
  if (it == s.entries.end()) return std::nullopt;
  Entry& e = it->second;
  if (!model_id.empty() && e.prediction.model_id != model_id) return std::nullopt;
  if (e.labeled) {
    if (labeled_already != nullptr) *labeled_already = true;
    return std::nullopt;
  }
  IndexedPrediction p = std::move(e.prediction);
  // The marker keeps its place (and its age) in the eviction order; its outputs are freed.
  const std::size_t marker = entry_bytes(request_id.size(), p.model_id.size(), 0);
  s.bytes -= e.bytes - marker;
  e.bytes = marker;
  e.labeled = true;
  e.prediction = IndexedPrediction{p.model_id, 0, {}, {}, p.unix_ms, nullptr};
  return p;
}

bool PredictionIndex::labeled(std::string_view request_id) const {
  const Shard& s = shards_[std::hash<std::string_view>{}(request_id) % kShards];
  std::lock_guard lock(s.mu);
  const auto it = s.entries.find(std::string(request_id));
  return it != s.entries.end() && it->second.labeled;
}

std::size_t PredictionIndex::bytes() const {
  std::size_t total = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    total += s.bytes;
  }
  return total;
}

std::size_t PredictionIndex::size() const {
  std::size_t total = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    total += s.entries.size();
  }
  return total;
}

}  // namespace forklift
