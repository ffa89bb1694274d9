// Live drift of one version against its profile (feature_profile.h): rows of recent requests
// counted into the profile's bins over a sliding window, compared as a population stability
// index per feature and for the output, with the change in each feature's missing rate.
// Memory is the profile's bins times kBuckets, whatever the traffic.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/sliding_buckets.h"
#include "core/drift/feature_profile.h"

namespace forklift {

struct FeatureDrift {
  std::string name;
  double psi = 0;
  double missing_rate = 0;            // in the window
  double reference_missing_rate = 0;  // in the profile
};

struct DriftReading {
  std::uint64_t rows = 0;  // in the window
  std::vector<FeatureDrift> features;
  std::optional<double> output_psi;
};

class DriftWindow {
 public:
  static constexpr std::size_t kBuckets = 12;

  // Features of `schema` the profile describes are watched; the others are not.
  DriftWindow(std::shared_ptr<const FeatureProfile> profile, const Schema& schema,
              std::int64_t window_ms);

  // Counts the rows (in the schema given above) and their outputs at `now_ms`.
  void observe(const Batch& batch, const std::vector<Value>& outputs, std::int64_t now_ms);
  DriftReading read(std::int64_t now_ms) const;
  const FeatureProfile& profile() const { return *profile_; }
  // Features the profile describes with a kind their type contradicts (not watched).
  const std::vector<std::string>& skipped() const { return skipped_; }

 private:
  struct Watched {
    std::size_t column;  // in the schema
    const Distribution* reference;
    std::string name;
  };
  struct Bucket {
    std::uint64_t rows = 0;
    std::vector<std::vector<std::uint64_t>> bins;  // per watched feature
    std::vector<std::uint64_t> missing;            // per watched feature
    std::vector<std::uint64_t> output_bins;
  };
  void reset(Bucket& b) const;

  const std::shared_ptr<const FeatureProfile> profile_;
  std::vector<Watched> watched_;
  std::vector<std::string> skipped_;
  mutable std::mutex mu_;
  SlidingBuckets<Bucket> buckets_;  // guarded by mu_
};

}  // namespace forklift
