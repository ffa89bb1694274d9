// Prometheus metrics. Counters and histograms are atomics that the serving threads bump without
// locks; the table of series is locked only when a version first appears and when /metrics renders.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace forklift {

class LatencyHistogram {
 public:
  // Upper bounds in seconds: 50 µs to 2.5 s, then +Inf.
  static constexpr std::array<double, 15> kBounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                                     0.0025,  0.005,  0.01,    0.025,  0.05,
                                                     0.1,     0.25,   0.5,     1.0,    2.5};

  void observe(double seconds);
  // Appends the _bucket, _sum and _count lines for `name` with `labels` ("a=\"b\",...").
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_nanos_{0};
};

enum class Outcome { kOk, kClientError, kServerError };

// What serving one version has done so far. Outlives the version's unload so counters never reset.
struct VersionMetrics {
  void record(Outcome outcome, double seconds);

  std::atomic<std::uint64_t> ok{0};
  std::atomic<std::uint64_t> client_error{0};
  std::atomic<std::uint64_t> server_error{0};
  LatencyHistogram latency;
};

class MetricsRegistry {
 public:
  std::shared_ptr<VersionMetrics> version(const std::string& model_id, std::int64_t version);
  void count_http_response(unsigned status);

  // Renders request counters, latency histograms and HTTP responses in the text format.
  void render(std::string& out) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::int64_t>, std::shared_ptr<VersionMetrics>> versions_;
  // Indexed by status / 100 (1xx .. 5xx).
  std::array<std::atomic<std::uint64_t>, 6> http_by_class_{};
};

// Escapes a label value for the Prometheus text format.
std::string prometheus_label(const std::string& value);

}  // namespace forklift
