// The last minutes of each model's traffic, one point per second, kept in memory for the web
// UI's charts: requests and errors per second and the p50 and p99 latency of that second. A
// sampler reads the (cumulative) counters once a second and stores the differences; serving
// threads are not involved.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/periodic_thread.h"
#include "observability/metrics.h"

namespace forklift {

struct SeriesPoint {
  std::int64_t time = 0;  // unix seconds
  double requests = 0;    // per second, every outcome
  double errors = 0;      // per second, 4xx and 5xx outcomes
  double p50_ms = 0;      // 0 when there was no request
  double p99_ms = 0;
};

class TimeSeries {
 public:
  explicit TimeSeries(const MetricsRegistry& metrics, std::size_t capacity = 600)
      : metrics_(metrics), capacity_(capacity) {}

  // Takes one point per model id (all its versions together) for the second `now`.
  void sample(std::int64_t now);
  // {"interval_seconds": 1, "models": {"eta": [{"t":..., "rps":..., "errors":..., "p50_ms":...,
  //  "p99_ms":...}, ...]}}; the last `seconds` points of each model.
  std::string to_json(std::size_t seconds) const;

 private:
  struct Previous {
    std::uint64_t requests = 0;
    std::uint64_t errors = 0;
    std::vector<std::uint64_t> buckets;
  };

  const MetricsRegistry& metrics_;
  std::size_t capacity_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::int64_t>, Previous> previous_;  // guarded by mu_
  std::map<std::string, std::deque<SeriesPoint>> series_;              // guarded by mu_
};

// The q-quantile (0..1) of a histogram's bucket counts, in the bounds' unit: linear within the
// bucket it falls in; the last bound when it falls in +Inf; 0 for no observations.
double bucket_quantile(const std::vector<std::uint64_t>& counts, std::span<const double> bounds,
                       double q);

// Samples `series` once a second (the UI's charts) until the returned thread is destroyed.
std::unique_ptr<PeriodicThread> start_sampler(TimeSeries& series);

}  // namespace forklift
