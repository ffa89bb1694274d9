#include "core/drift/drift_window.h"

#include <algorithm>

namespace forklift {

DriftWindow::DriftWindow(std::shared_ptr<const FeatureProfile> profile, const Schema& schema,
                         std::int64_t window_ms)
    : profile_(std::move(profile)), buckets_(kBuckets, window_ms) {
  for (std::size_t c = 0; c < schema.features.size(); ++c) {
    const FeatureSpec& f = schema.features[c];
    const auto it = profile_->features.find(f.name);
    if (it == profile_->features.end()) continue;
    // A profile that bins a number as a category (or the reverse) would count every value as
    // missing: such a feature is not watched.
    const bool numeric = f.type == ValueType::kFloat || f.type == ValueType::kInt;
    const bool categorical = f.type == ValueType::kString || f.type == ValueType::kBool;
    const bool profiled_numeric = it->second.kind == Distribution::Kind::kNumeric;
    if ((numeric && profiled_numeric) || (categorical && !profiled_numeric)) {
      watched_.push_back({c, &it->second, it->first});
    } else {
      skipped_.push_back(f.name);
    }
  }
}

void DriftWindow::reset(Bucket& b) const {
  b.rows = 0;
  b.bins.resize(watched_.size());
  for (std::size_t i = 0; i < watched_.size(); ++i) {
    b.bins[i].assign(watched_[i].reference->bins(), 0);
  }
  b.missing.assign(watched_.size(), 0);
  b.output_bins.assign(profile_->output ? profile_->output->bins() : 0, 0);
}

void DriftWindow::observe(const Batch& batch, const std::vector<Value>& outputs,
                          std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  Bucket& b = buckets_.current(now_ms, [this](Bucket& stale) { reset(stale); });
  b.rows += batch.rows();
  for (std::size_t r = 0; r < batch.rows(); ++r) {
    const RowView row = batch.row(r);
    for (std::size_t i = 0; i < watched_.size(); ++i) {
      const Value& v = row[watched_[i].column];
      if (const auto bin = watched_[i].reference->bin_of(v)) {
        ++b.bins[i][std::min(*bin, b.bins[i].size() - 1)];
      } else {
        ++b.missing[i];
      }
    }
  }
  if (profile_->output) {
    for (const Value& out : outputs) {
      if (const auto bin = profile_->output->bin_of(out)) {
        ++b.output_bins[std::min(*bin, b.output_bins.size() - 1)];
      }
    }
  }
}

DriftReading DriftWindow::read(std::int64_t now_ms) const {
  DriftReading reading;
  std::vector<std::vector<std::uint64_t>> bins(watched_.size());
  for (std::size_t i = 0; i < watched_.size(); ++i)
    bins[i].assign(watched_[i].reference->bins(), 0);
  std::vector<std::uint64_t> missing(watched_.size(), 0);
  std::vector<std::uint64_t> output(profile_->output ? profile_->output->bins() : 0, 0);
  {
    std::lock_guard lock(mu_);
    buckets_.for_each_in_window(now_ms, [&](const Bucket& b) {
      reading.rows += b.rows;
      for (std::size_t i = 0; i < watched_.size(); ++i) {
        for (std::size_t k = 0; k < bins[i].size(); ++k) bins[i][k] += b.bins[i][k];
        missing[i] += b.missing[i];
      }
      for (std::size_t k = 0; k < output.size(); ++k) output[k] += b.output_bins[k];
    });
  }
  if (reading.rows == 0) return reading;
  for (std::size_t i = 0; i < watched_.size(); ++i) {
    const Distribution& ref = *watched_[i].reference;
    reading.features.push_back(
        {watched_[i].name, population_stability_index(ref.fractions, bins[i]),
         static_cast<double>(missing[i]) / static_cast<double>(reading.rows), ref.missing_rate});
  }
  if (profile_->output) {
    reading.output_psi = population_stability_index(profile_->output->fractions, output);
  }
  return reading;
}

}  // namespace forklift
