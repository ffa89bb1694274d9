// A version's feature profile (profile.json beside model.yaml): what its inputs and outputs
// looked like in reference data, so live traffic can be compared with it (drift_window.h).
//
//   {"format": 1, "rows": 5000, "source": "train.jsonl",
//    "features": {
//      "distance_km": {"kind": "numeric", "missing_rate": 0.01,
//                      "edges": [1.2, 2.5, ...], "fractions": [0.1, 0.1, ...]},
//      "city": {"kind": "categorical", "missing_rate": 0,
//               "categories": ["sf", "nyc"], "fractions": [0.5, 0.3, 0.2]}},
//    "output": {"kind": "numeric", ...}}
//
// Numeric: `edges` are the cut points between bins (deciles of the reference by default), so
// `fractions` has one more entry than `edges`. Categorical: the most common categories, and one
// last fraction for every other value. Fractions count non-missing values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/status.h"
#include "forklift/types.h"

namespace forklift {

struct Distribution {
  enum class Kind { kNumeric, kCategorical };
  Kind kind = Kind::kNumeric;
  double missing_rate = 0;
  std::vector<double> edges;            // numeric: increasing cut points
  std::vector<std::string> categories;  // categorical
  std::vector<double> fractions;        // per bin; categorical: per category, then "other"

  std::size_t bins() const { return fractions.size(); }
  // The bin a value falls in; nullopt when it is missing (NaN) or of a type this cannot bin.
  std::optional<std::size_t> bin_of(const Value& value) const;
  bool operator==(const Distribution&) const = default;
};

struct FeatureProfile {
  std::int64_t rows = 0;
  std::string source;
  std::map<std::string, Distribution, std::less<>> features;
  std::optional<Distribution> output;

  bool operator==(const FeatureProfile&) const = default;
};

inline constexpr std::size_t kMaxProfileBytes = 4u << 20;
inline constexpr std::size_t kMaxProfileBins = 100;
inline constexpr std::size_t kMaxProfileFeatures = 10000;

// Errors name the feature at fault; nothing of the file's content is echoed beyond names.
Result<FeatureProfile> parse_feature_profile(std::string_view json);
std::string feature_profile_to_json(const FeatureProfile& profile);

// Builds a profile from reference rows (in `schema`) and the model's outputs for them:
// numeric features get `bins` quantile bins, strings and booleans their most common values.
FeatureProfile build_feature_profile(const Batch& rows, const std::vector<Value>& outputs,
                                     std::size_t bins, std::string source);

// The population stability index of `actual` counts against `expected` fractions: sum of
// (a - e) * ln(a / e), each fraction floored at 1e-4 so an empty bin is finite. Under 0.1 is
// usually read as stable, 0.1 to 0.25 as a shift, above 0.25 as a large one.
double population_stability_index(const std::vector<double>& expected,
                                  const std::vector<std::uint64_t>& actual);

}  // namespace forklift
