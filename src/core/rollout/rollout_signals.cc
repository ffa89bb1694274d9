#include "core/rollout/rollout_signals.h"

#include <cmath>
#include <limits>
#include <optional>
#include <utility>

namespace forklift {
namespace {

std::uint64_t minus(std::uint64_t a, std::uint64_t b) {
  return a > b ? a - b : 0;
}

constexpr double kZ = 1.96;  // 95%, two-sided

}  // namespace

double VersionSample::error_ratio() const {
  return requests == 0 ? 0 : static_cast<double>(errors) / static_cast<double>(requests);
}

namespace {

// Where the 99th percentile of `buckets` falls: its bucket, the answers in the buckets before it
// and its rank. Nothing when there are no answers.
struct Percentile {
  std::size_t bucket = 0;
  double before = 0;
  double rank = 0;
};
std::optional<Percentile> p99_of(const std::vector<std::uint64_t>& buckets) {
  std::uint64_t total = 0;
  for (std::uint64_t c : buckets) total += c;
  if (total == 0) return std::nullopt;
  const double rank = 0.99 * static_cast<double>(total);
  double seen = 0;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const double in_bucket = static_cast<double>(buckets[i]);
    if (in_bucket > 0 && seen + in_bucket >= rank) return Percentile{i, seen, rank};
    seen += in_bucket;
  }
  return Percentile{buckets.size() - 1, seen, rank};
}

}  // namespace

double VersionSample::p99_seconds() const {
  const std::span<const double> bounds = fine_latency_bounds();
  const std::optional<Percentile> p = p99_of(latency_buckets);
  if (!p) return std::numeric_limits<double>::quiet_NaN();
  const double lower = p->bucket == 0 ? 0 : bounds[p->bucket - 1];
  // The +Inf bucket has no upper bound: its lower bound is the best estimate there is.
  if (p->bucket >= bounds.size()) return lower;
  const double in_bucket = static_cast<double>(latency_buckets[p->bucket]);
  return lower + (bounds[p->bucket] - lower) * ((p->rank - p->before) / in_bucket);
}

double VersionSample::p99_upper_bound_seconds() const {
  const std::span<const double> bounds = fine_latency_bounds();
  const std::optional<Percentile> p = p99_of(latency_buckets);
  if (!p) return std::numeric_limits<double>::quiet_NaN();
  return p->bucket < bounds.size() ? bounds[p->bucket] : std::numeric_limits<double>::infinity();
}

std::uint64_t VersionSample::answers_at_least(double seconds) const {
  const std::span<const double> bounds = fine_latency_bounds();
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < latency_buckets.size(); ++i) {
    const double lower = i == 0 ? 0 : bounds[i - 1];
    if (lower >= seconds) n += latency_buckets[i];
  }
  return n;
}

VersionSample sample_of(const VersionMetrics& m) {
  VersionSample s;
  const std::uint64_t ok = m.ok.load(std::memory_order_relaxed);
  const std::uint64_t client = m.client_error.load(std::memory_order_relaxed);
  s.errors = m.server_error.load(std::memory_order_relaxed);
  s.requests = ok + client + s.errors;
  s.latency_buckets = m.fine_latency.bucket_counts();
  return s;
}

VersionSample operator-(const VersionSample& now, const VersionSample& before) {
  VersionSample d;
  d.requests = minus(now.requests, before.requests);
  d.errors = minus(now.errors, before.errors);
  d.latency_buckets = now.latency_buckets;
  for (std::size_t i = 0; i < d.latency_buckets.size() && i < before.latency_buckets.size(); ++i) {
    d.latency_buckets[i] = minus(now.latency_buckets[i], before.latency_buckets[i]);
  }
  return d;
}

ShadowSample sample_of(const ShadowMetrics& m) {
  ShadowSample s;
  s.errors = m.errors.load(std::memory_order_relaxed);
  s.predictions = m.latency.count();  // observed for every copy, failed or not
  s.agree = m.agree.load(std::memory_order_relaxed);
  s.disagree = m.disagree.load(std::memory_order_relaxed);
  return s;
}

ShadowSample operator-(const ShadowSample& now, const ShadowSample& before) {
  return ShadowSample{minus(now.predictions, before.predictions), minus(now.errors, before.errors),
                      minus(now.agree, before.agree), minus(now.disagree, before.disagree)};
}

namespace {

// The Wilson score interval of `hits` in `n` at 95%, n > 0.
std::pair<double, double> wilson_interval(std::uint64_t hits, std::uint64_t n) {
  const double nn = static_cast<double>(n);
  const double p = static_cast<double>(hits) / nn;
  const double z2 = kZ * kZ;
  const double centre = p + z2 / (2 * nn);
  const double spread = kZ * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
  return {std::max(0.0, (centre - spread) / (1 + z2 / nn)),
          std::min(1.0, (centre + spread) / (1 + z2 / nn))};
}

}  // namespace

double wilson_lower(std::uint64_t hits, std::uint64_t n) {
  return n == 0 ? 0 : wilson_interval(hits, n).first;
}

double wilson_upper(std::uint64_t hits, std::uint64_t n) {
  return n == 0 ? 1 : wilson_interval(hits, n).second;
}

}  // namespace forklift
