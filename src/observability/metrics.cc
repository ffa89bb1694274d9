#include "observability/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace forklift {
namespace {

void append_number(std::string& out, double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

}  // namespace

void append_sample(std::string& out, std::string_view name, std::string_view labels,
                   std::uint64_t value) {
  out += name;
  out += labels;
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

std::string prometheus_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {}

std::span<const double> fine_latency_bounds() {
  static const std::array<double, kFineLatencyBucketCount> bounds = [] {
    std::array<double, kFineLatencyBucketCount> b{};
    double bound = 1e-5;
    for (double& x : b) {
      x = bound;
      bound *= 1.1;
    }
    return b;
  }();
  return bounds;
}

void Histogram::observe(double value) {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

std::vector<std::uint64_t> Histogram::bucket_counts() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = buckets_[i].load(std::memory_order_relaxed);
  return out;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out += name + "_bucket{" + labels + ",le=\"";
    if (i < bounds_.size()) {
      append_number(out, bounds_[i]);
    } else {
      out += "+Inf";
    }
    out += "\"} ";
    append_number(out, cumulative);
    out.push_back('\n');
  }
  out += name + "_sum{" + labels + "} ";
  append_number(out, sum_.load(std::memory_order_relaxed));
  out += "\n" + name + "_count{" + labels + "} ";
  append_number(out, cumulative);
  out.push_back('\n');
}

void VersionMetrics::record(Outcome outcome, double seconds) {
  fine_latency.observe(seconds);
  switch (outcome) {
    case Outcome::kOk:
      ok.fetch_add(1, std::memory_order_relaxed);
      break;
    case Outcome::kClientError:
      client_error.fetch_add(1, std::memory_order_relaxed);
      break;
    case Outcome::kServerError:
      server_error.fetch_add(1, std::memory_order_relaxed);
      break;
  }
  latency.observe(seconds);
}

std::shared_ptr<VersionMetrics> MetricsRegistry::version(const std::string& model_id,
                                                         std::int64_t version) {
  std::lock_guard lock(mu_);
  auto& slot = versions_[{model_id, version}];
  if (!slot) slot = std::make_shared<VersionMetrics>();
  return slot;
}

std::shared_ptr<ShadowMetrics> MetricsRegistry::shadow(const std::string& model_id,
                                                       std::int64_t primary, std::int64_t shadow) {
  std::lock_guard lock(mu_);
  auto& slot = shadows_[{model_id, primary, shadow}];
  if (!slot) slot = std::make_shared<ShadowMetrics>();
  return slot;
}

std::vector<std::pair<std::pair<std::string, std::int64_t>, std::shared_ptr<VersionMetrics>>>
MetricsRegistry::versions() const {
  std::lock_guard lock(mu_);
  return {versions_.begin(), versions_.end()};
}

std::vector<
    std::pair<std::tuple<std::string, std::int64_t, std::int64_t>, std::shared_ptr<ShadowMetrics>>>
MetricsRegistry::shadows() const {
  std::lock_guard lock(mu_);
  return {shadows_.begin(), shadows_.end()};
}

void MetricsRegistry::count_http_response(unsigned status) {
  const std::size_t cls = std::min<std::size_t>(status / 100, http_by_class_.size() - 1);
  http_by_class_[cls].fetch_add(1, std::memory_order_relaxed);
}

void MetricsRegistry::count_grpc_call(GrpcMethod method, int code) {
  const auto m = static_cast<std::size_t>(method);
  if (m >= grpc_calls_.size() || code < 0 || code >= 17) return;
  grpc_calls_[m][static_cast<std::size_t>(code)].fetch_add(1, std::memory_order_relaxed);
}

void MetricsRegistry::render(std::string& out) const {
  std::lock_guard lock(mu_);
  render_versions(out);
  render_shadows(out);
  out += "# HELP forklift_http_responses_total HTTP responses by status class.\n";
  out += "# TYPE forklift_http_responses_total counter\n";
  for (std::size_t cls = 1; cls < http_by_class_.size(); ++cls) {
    out += "forklift_http_responses_total{code=\"" + std::to_string(cls) + "xx\"} ";
    append_number(out, http_by_class_[cls].load(std::memory_order_relaxed));
    out.push_back('\n');
  }
  render_grpc(out);
}

void MetricsRegistry::render_grpc(std::string& out) const {
  // The names gRPC gives its status codes (grpc/status.h), by number.
  static constexpr std::array<const char*, 17> kCodes = {"OK",
                                                         "CANCELLED",
                                                         "UNKNOWN",
                                                         "INVALID_ARGUMENT",
                                                         "DEADLINE_EXCEEDED",
                                                         "NOT_FOUND",
                                                         "ALREADY_EXISTS",
                                                         "PERMISSION_DENIED",
                                                         "RESOURCE_EXHAUSTED",
                                                         "FAILED_PRECONDITION",
                                                         "ABORTED",
                                                         "OUT_OF_RANGE",
                                                         "UNIMPLEMENTED",
                                                         "INTERNAL",
                                                         "UNAVAILABLE",
                                                         "DATA_LOSS",
                                                         "UNAUTHENTICATED"};
  out += "# HELP forklift_grpc_requests_total gRPC calls by method and status code.\n";
  out += "# TYPE forklift_grpc_requests_total counter\n";
  for (std::size_t m = 0; m < grpc_calls_.size(); ++m) {
    for (std::size_t c = 0; c < kCodes.size(); ++c) {
      const std::uint64_t n = grpc_calls_[m][c].load(std::memory_order_relaxed);
      if (n == 0) continue;
      out += "forklift_grpc_requests_total{method=\"";
      out += kGrpcMethods[m];
      out += "\",code=\"";
      out += kCodes[c];
      out += "\"} ";
      append_number(out, n);
      out.push_back('\n');
    }
  }
}

// Requests, timeouts, load shed, batching and latency: one series per version.
void MetricsRegistry::render_versions(std::string& out) const {
  out += "# HELP forklift_requests_total Inference requests by model id, version and outcome.\n";
  out += "# TYPE forklift_requests_total counter\n";
  for (const auto& [key, m] : versions_) {
    const std::string labels = "model_id=\"" + prometheus_label(key.first) + "\",version=\"" +
                               std::to_string(key.second) + "\"";
    const std::pair<const char*, std::uint64_t> rows[] = {
        {"ok", m->ok.load(std::memory_order_relaxed)},
        {"client_error", m->client_error.load(std::memory_order_relaxed)},
        {"server_error", m->server_error.load(std::memory_order_relaxed)}};
    for (const auto& [outcome, n] : rows) {
      out += "forklift_requests_total{" + labels + ",outcome=\"" + outcome + "\"} ";
      append_number(out, n);
      out.push_back('\n');
    }
  }
  // Counters with one series per version.
  const auto per_version = [&](const char* name, const char* help,
                               std::atomic<std::uint64_t> VersionMetrics::*counter) {
    out += std::string("# HELP ") + name + " " + help + "\n";
    out += std::string("# TYPE ") + name + " counter\n";
    for (const auto& [key, m] : versions_) {
      out += std::string(name) + "{model_id=\"" + prometheus_label(key.first) + "\",version=\"" +
             std::to_string(key.second) + "\"} ";
      append_number(out, ((*m).*counter).load(std::memory_order_relaxed));
      out.push_back('\n');
    }
  };
  per_version("forklift_predict_timeouts_total",
              "Predictions that ran past the model's timeout_ms.", &VersionMetrics::timeouts);
  per_version("forklift_requests_shed_total",
              "Requests refused at once (503) because the version's queue was full.",
              &VersionMetrics::shed);
  const std::pair<const char*, Histogram BatchMetrics::*> batch_series[] = {
      {"forklift_batch_rows", &BatchMetrics::rows},
      {"forklift_batch_requests", &BatchMetrics::requests},
      {"forklift_batch_queue_seconds", &BatchMetrics::queue_seconds}};
  const char* batch_help[] = {"Rows per runtime call under dynamic batching.",
                              "Requests per runtime call under dynamic batching.",
                              "Time a request waited in the batching queue."};
  for (std::size_t i = 0; i < std::size(batch_series); ++i) {
    const auto& [name, member] = batch_series[i];
    out += std::string("# HELP ") + name + " " + batch_help[i] + "\n";
    out += std::string("# TYPE ") + name + " histogram\n";
    for (const auto& [key, m] : versions_) {
      const Histogram& h = m->batching.*member;
      if (h.count() == 0) continue;
      h.render(out, name,
               "model_id=\"" + prometheus_label(key.first) + "\",version=\"" +
                   std::to_string(key.second) + "\"");
    }
  }
  out += "# HELP forklift_request_duration_seconds Time from parsed request to written answer.\n";
  out += "# TYPE forklift_request_duration_seconds histogram\n";
  for (const auto& [key, m] : versions_) {
    const std::string labels = "model_id=\"" + prometheus_label(key.first) + "\",version=\"" +
                               std::to_string(key.second) + "\"";
    m->latency.render(out, "forklift_request_duration_seconds", labels);
  }
}

// What shadowing has shown: one series per (model, primary version, shadow version).
void MetricsRegistry::render_shadows(std::string& out) const {
  out += "# HELP forklift_shadow_rows_total Shadow output rows by comparison with the primary.\n";
  out += "# TYPE forklift_shadow_rows_total counter\n";
  const auto shadow_labels = [](const auto& key) {
    return "model_id=\"" + prometheus_label(std::get<0>(key)) + "\",primary_version=\"" +
           std::to_string(std::get<1>(key)) + "\",shadow_version=\"" +
           std::to_string(std::get<2>(key)) + "\"";
  };
  for (const auto& [key, m] : shadows_) {
    const std::string labels = shadow_labels(key);
    const std::pair<const char*, std::uint64_t> rows[] = {
        {"agree", m->agree.load(std::memory_order_relaxed)},
        {"disagree", m->disagree.load(std::memory_order_relaxed)}};
    for (const auto& [result, n] : rows) {
      out += "forklift_shadow_rows_total{" + labels + ",result=\"" + result + "\"} ";
      append_number(out, n);
      out.push_back('\n');
    }
  }
  out += "# HELP forklift_shadow_errors_total Shadow predictions that failed.\n";
  out += "# TYPE forklift_shadow_errors_total counter\n";
  for (const auto& [key, m] : shadows_) {
    out += "forklift_shadow_errors_total{" + shadow_labels(key) + "} ";
    append_number(out, m->errors.load(std::memory_order_relaxed));
    out.push_back('\n');
  }
  out += "# HELP forklift_shadow_dropped_total Shadow copies dropped because the queue was full.\n";
  out += "# TYPE forklift_shadow_dropped_total counter\n";
  for (const auto& [key, m] : shadows_) {
    out += "forklift_shadow_dropped_total{" + shadow_labels(key) + "} ";
    append_number(out, m->dropped.load(std::memory_order_relaxed));
    out.push_back('\n');
  }
  out += "# HELP forklift_shadow_duration_seconds Time the shadow took to predict.\n";
  out += "# TYPE forklift_shadow_duration_seconds histogram\n";
  for (const auto& [key, m] : shadows_) {
    m->latency.render(out, "forklift_shadow_duration_seconds", shadow_labels(key));
  }
  out +=
      "# HELP forklift_shadow_abs_diff Absolute difference between shadow and primary outputs.\n";
  out += "# TYPE forklift_shadow_abs_diff histogram\n";
  for (const auto& [key, m] : shadows_) {
    m->abs_diff.render(out, "forklift_shadow_abs_diff", shadow_labels(key));
  }
  out +=
      "# HELP forklift_shadow_rel_diff Relative difference between shadow and primary outputs.\n";
  out += "# TYPE forklift_shadow_rel_diff histogram\n";
  for (const auto& [key, m] : shadows_) {
    m->rel_diff.render(out, "forklift_shadow_rel_diff", shadow_labels(key));
  }
}

}  // namespace forklift
