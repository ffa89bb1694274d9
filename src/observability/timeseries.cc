#include "observability/timeseries.h"

#include "common/json_writer.h"

namespace forklift {

double bucket_quantile(const std::vector<std::uint64_t>& counts, std::span<const double> bounds,
                       double q) {
  std::uint64_t total = 0;
  for (auto c : counts) total += c;
  if (total == 0) return 0;
  const double rank = q * static_cast<double>(total);
  double seen = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const double here = static_cast<double>(counts[i]);
    if (here > 0 && seen + here >= rank) {
      if (i >= bounds.size()) return bounds.back();  // beyond the last bound
      const double lower = i == 0 ? 0 : bounds[i - 1];
      return lower + (bounds[i] - lower) * ((rank - seen) / here);
    }
    seen += here;
  }
  return bounds.back();
}

void TimeSeries::sample(std::int64_t now) {
  struct Sum {
    std::uint64_t requests = 0;
    std::uint64_t errors = 0;
    std::vector<std::uint64_t> buckets;
  };
  std::map<std::string, Sum> by_model;
  std::span<const double> bounds;
  std::lock_guard lock(mu_);
  for (const auto& [key, m] : metrics_.versions()) {
    const std::uint64_t ok = m->ok.load(std::memory_order_relaxed);
    const std::uint64_t errors = m->client_error.load(std::memory_order_relaxed) +
                                 m->server_error.load(std::memory_order_relaxed);
    std::vector<std::uint64_t> buckets = m->latency.bucket_counts();
    bounds = m->latency.bounds();
    Previous& prev = previous_[key];
    if (prev.buckets.empty()) prev.buckets.assign(buckets.size(), 0);
    Sum& sum = by_model[key.first];
    sum.requests += ok + errors - prev.requests;
    sum.errors += errors - prev.errors;
    if (sum.buckets.empty()) sum.buckets.assign(buckets.size(), 0);
    for (std::size_t i = 0; i < buckets.size(); ++i) sum.buckets[i] += buckets[i] - prev.buckets[i];
    prev = Previous{ok + errors, errors, std::move(buckets)};
  }
  for (auto& [model, sum] : by_model) {
    auto& points = series_[model];
    points.push_back(SeriesPoint{now, static_cast<double>(sum.requests),
                                 static_cast<double>(sum.errors),
                                 bucket_quantile(sum.buckets, bounds, 0.5) * 1000,
                                 bucket_quantile(sum.buckets, bounds, 0.99) * 1000});
    while (points.size() > capacity_) points.pop_front();
  }
}

std::string TimeSeries::to_json(std::size_t seconds) const {
  std::lock_guard lock(mu_);
  std::string out = "{\"interval_seconds\":1,\"models\":{";
  bool first_model = true;
  for (const auto& [model, points] : series_) {
    if (!first_model) out.push_back(',');
    first_model = false;
    json::append_string(out, model);
    out += ":[";
    const std::size_t start = points.size() > seconds ? points.size() - seconds : 0;
    for (std::size_t i = start; i < points.size(); ++i) {
      const SeriesPoint& p = points[i];
      if (i > start) out.push_back(',');
      out += "{\"t\":";
      json::append_int(out, p.time);
      out += ",\"rps\":";
      json::append_double(out, p.requests);
      out += ",\"errors\":";
      json::append_double(out, p.errors);
      out += ",\"p50_ms\":";
      json::append_double(out, p.p50_ms);
      out += ",\"p99_ms\":";
      json::append_double(out, p.p99_ms);
      out.push_back('}');
    }
    out.push_back(']');
  }
  out += "}}";
  return out;
}

std::unique_ptr<PeriodicThread> start_sampler(TimeSeries& series) {
  return std::make_unique<PeriodicThread>(std::chrono::seconds(1), [&series] {
    series.sample(std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
  });
}

}  // namespace forklift
