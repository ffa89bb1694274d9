// Prometheus metrics. Counters and histograms are atomics that the serving threads bump without
// locks; the table of series is locked only when a version first appears and when /metrics renders.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace forklift {

// A Prometheus histogram with fixed upper bounds; observe() is lock-free.
class Histogram {
 public:
  explicit Histogram(std::span<const double> bounds);

  void observe(double value);
  // The count in each bucket (not cumulative), the last one +Inf.
  std::vector<std::uint64_t> bucket_counts() const;
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  std::span<const double> bounds() const { return bounds_; }
  // Appends the _bucket, _sum and _count lines for `name` with `labels` ("a=\"b\",...").
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::span<const double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1 (+Inf)
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// Request latency in seconds: 50 µs to 2.5 s, then +Inf.
inline constexpr std::array<double, 15> kLatencyBounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                                          0.0025,  0.005,  0.01,    0.025,  0.05,
                                                          0.1,     0.25,   0.5,     1.0,    2.5};

class LatencyHistogram : public Histogram {
 public:
  LatencyHistogram() : Histogram(kLatencyBounds) {}
};

// Finer latency buckets, each 10% wider than the last, from 10 µs to about 60 s; not exported.
// The exported ones (a factor of 2 to 2.5 apart) cannot tell 2 ms from 4 ms for sure; comparing
// two versions' latencies (the rollout's guardrail) needs these.
inline constexpr std::size_t kFineLatencyBucketCount = 165;
std::span<const double> fine_latency_bounds();

enum class Outcome { kOk, kClientError, kServerError };

// Rows or requests per runtime call under dynamic batching: 1 to 1024, then +Inf.
inline constexpr std::array<double, 11> kBatchSizeBounds = {1,  2,   4,   8,   16,  32,
                                                            64, 128, 256, 512, 1024};

// What dynamic batching has done for one version (core/batching_model.h).
struct BatchMetrics {
  Histogram rows{kBatchSizeBounds};         // rows per runtime call
  Histogram requests{kBatchSizeBounds};     // requests per runtime call
  Histogram queue_seconds{kLatencyBounds};  // time from queued to the start of its runtime call
};

// What serving one version has done so far. Outlives the version's unload so counters never reset.
struct VersionMetrics {
  void record(Outcome outcome, double seconds);

  std::atomic<std::uint64_t> ok{0};
  std::atomic<std::uint64_t> client_error{0};
  std::atomic<std::uint64_t> server_error{0};
  std::atomic<std::uint64_t> timeouts{0};  // predictions past the model's timeout_ms
  std::atomic<std::uint64_t> shed{0};      // refused at once: the version's queue was full
  std::atomic<std::int64_t> in_flight{0};  // predictions started and not yet answered
  LatencyHistogram latency;
  Histogram fine_latency{fine_latency_bounds()};  // the same answers, finer; not rendered
  BatchMetrics batching;                          // rendered only for versions that batch
};

// Differences between a shadow's and the primary's outputs: 1e-6 to 1e3.
inline constexpr std::array<double, 10> kDiffBounds = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2,
                                                       0.1,  1.0,  10.0, 100., 1000.};

// What shadowing one version with another has shown so far.
struct ShadowMetrics {
  std::atomic<std::uint64_t> agree{0};     // output rows within the shadow's tolerance
  std::atomic<std::uint64_t> disagree{0};  // output rows outside it
  std::atomic<std::uint64_t> errors{0};    // shadow predictions that failed
  std::atomic<std::uint64_t> dropped{0};   // copies not made because the queue was full
  LatencyHistogram latency;
  Histogram abs_diff{kDiffBounds};
  Histogram rel_diff{kDiffBounds};
};

// The gRPC methods forklift serves (grpc_api/), as forklift_grpc_requests_total names them
// (kGrpcMethods, in this order).
enum class GrpcMethod : std::size_t {
  kServerLive,
  kServerReady,
  kModelReady,
  kServerMetadata,
  kModelMetadata,
  kModelInfer,
  kRepositoryIndex,
  kRepositoryModelLoad,
  kRepositoryModelUnload,
};
inline constexpr std::array<const char*, 9> kGrpcMethods = {
    "ServerLive", "ServerReady",     "ModelReady",          "ServerMetadata",       "ModelMetadata",
    "ModelInfer", "RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload"};

class MetricsRegistry {
 public:
  std::shared_ptr<VersionMetrics> version(const std::string& model_id, std::int64_t version);
  std::shared_ptr<ShadowMetrics> shadow(const std::string& model_id, std::int64_t primary,
                                        std::int64_t shadow);
  void count_http_response(unsigned status);
  // A gRPC call answered with `code`, gRPC's status code (0-16).
  void count_grpc_call(GrpcMethod method, int code);

  // Renders request counters, latency histograms and HTTP responses in the text format.
  void render(std::string& out) const;
  // Every version's metrics so far (for the time series).
  std::vector<std::pair<std::pair<std::string, std::int64_t>, std::shared_ptr<VersionMetrics>>>
  versions() const;
  // Every shadow pair's comparison so far, keyed by (model id, primary, shadow).
  std::vector<std::pair<std::tuple<std::string, std::int64_t, std::int64_t>,
                        std::shared_ptr<ShadowMetrics>>>
  shadows() const;

 private:
  // Under mu_, as render() holds it.
  void render_versions(std::string& out) const;
  void render_shadows(std::string& out) const;
  void render_grpc(std::string& out) const;

  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::int64_t>, std::shared_ptr<VersionMetrics>> versions_;
  std::map<std::tuple<std::string, std::int64_t, std::int64_t>, std::shared_ptr<ShadowMetrics>>
      shadows_;
  // Indexed by status / 100 (1xx .. 5xx).
  std::array<std::atomic<std::uint64_t>, 6> http_by_class_{};
  // [method][code]; rendered only for the pairs that happened.
  std::array<std::array<std::atomic<std::uint64_t>, 17>, 9> grpc_calls_{};
};

// Appends one sample line, "<name><labels> <value>\n" (labels: "" or "{a=\"b\"}").
void append_sample(std::string& out, std::string_view name, std::string_view labels,
                   std::uint64_t value);

// Escapes a label value for the Prometheus text format.
std::string prometheus_label(const std::string& value);

}  // namespace forklift
