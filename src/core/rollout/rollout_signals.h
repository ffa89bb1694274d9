// What a rollout decides on: counters read from the metrics of the candidate and the baseline,
// as differences over a window (since the stage began, since the rollout began).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/feedback/quality_source.h"
#include "observability/metrics.h"

namespace forklift {

// One version's counters at one instant (cumulative); subtract two for a window.
struct VersionSample {
  std::uint64_t requests = 0;                  // answered, whatever the outcome
  std::uint64_t errors = 0;                    // server errors (5xx): failures, timeouts, shedding
  std::vector<std::uint64_t> latency_buckets;  // per fine_latency_bounds() bucket, +Inf last

  // The error ratio (0 with no requests).
  double error_ratio() const;
  // The 99th percentile latency in seconds, interpolated within its bucket (NaN: no requests).
  double p99_seconds() const;
  // The upper bound of the bucket holding the 99th percentile: the p99 is at most this
  // (infinity when it lies past the last bound; NaN with no requests).
  double p99_upper_bound_seconds() const;
  // Answers in buckets whose lower bound is at least `seconds`: answers that certainly took
  // that long, whatever their place inside a bucket.
  std::uint64_t answers_at_least(double seconds) const;
};
VersionSample sample_of(const VersionMetrics& metrics);
VersionSample operator-(const VersionSample& now, const VersionSample& before);

// A shadow pair's counters at one instant.
struct ShadowSample {
  std::uint64_t predictions = 0;  // copies the shadow predicted (or failed on)
  std::uint64_t errors = 0;
  std::uint64_t agree = 0;  // rows
  std::uint64_t disagree = 0;
};
ShadowSample sample_of(const ShadowMetrics& metrics);
ShadowSample operator-(const ShadowSample& now, const ShadowSample& before);

// The windows start when the driver first follows the rollout (or takes it over), so a replica
// that restarts or takes over counts afresh.
struct RolloutSignals {
  VersionSample candidate;        // since its first canary step
  VersionSample candidate_stage;  // since the current stage began
  VersionSample baseline;         // since the rollout began
  VersionSample baseline_canary;  // since the candidate's first canary step: the same moments
  ShadowSample shadow;            // since the shadow stage began
  QualityReading candidate_quality;
  QualityReading baseline_quality;
};

// The lower (or upper) bound of the Wilson score interval of `hits` in `n` at 95%: what the
// ratio is at least (at most), allowing for chance. 0 (1) when n is 0.
double wilson_lower(std::uint64_t hits, std::uint64_t n);
double wilson_upper(std::uint64_t hits, std::uint64_t n);

}  // namespace forklift
