#include "core/shadow_runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "common/value_bytes.h"
#include "observability/log.h"

namespace forklift {
namespace {

std::optional<double> shadow_number_of(const Value& v) {
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* b = std::get_if<bool>(&v)) return *b ? 1.0 : 0.0;
  return std::nullopt;
}

// The primary's batch in the shadow's schema: features matched by name. Empty optional when the
// shadow needs a feature the primary's requests do not carry with the same type.
std::optional<Batch> remap(const Batch& batch, const Schema& to) {
  const Schema& from = batch.schema();
  Batch out(to);
  std::vector<std::size_t> source(to.features.size());
  for (std::size_t i = 0; i < to.features.size(); ++i) {
    const std::ptrdiff_t j = from.index_of(to.features[i].name);
    if (j < 0) return std::nullopt;
    const FeatureSpec& a = from.features[static_cast<std::size_t>(j)];
    if (a.type != to.features[i].type || a.length != to.features[i].length) return std::nullopt;
    source[i] = static_cast<std::size_t>(j);
  }
  out.reserve_rows(batch.rows());
  for (std::size_t r = 0; r < batch.rows(); ++r) {
    auto row = out.add_row();
    for (std::size_t i = 0; i < source.size(); ++i) row[i] = batch.row(r)[source[i]];
  }
  return out;
}

}  // namespace

Comparison compare_outputs(const Value& primary, const Value& shadow, double agree_tolerance) {
  Comparison c;
  const auto within = [&](double a, double b) {
    const double diff = std::fabs(a - b);
    c.abs_diff = std::max(c.abs_diff, diff);
    const double rel = diff / std::max(std::fabs(a), 1e-12);
    c.rel_diff = std::max(c.rel_diff, diff == 0 ? 0.0 : rel);
    return diff == 0 || rel <= agree_tolerance;
  };
  if (auto a = shadow_number_of(primary), b = shadow_number_of(shadow); a && b) {
    c.agree = within(*a, *b);
    return c;
  }
  const auto* va = std::get_if<std::vector<float>>(&primary);
  const auto* vb = std::get_if<std::vector<float>>(&shadow);
  if (va && vb && va->size() == vb->size()) {
    c.agree = true;
    for (std::size_t i = 0; i < va->size(); ++i) c.agree = within((*va)[i], (*vb)[i]) && c.agree;
    return c;
  }
  c.agree = primary == shadow;
  if (!c.agree) c.rel_diff = c.abs_diff = std::numeric_limits<double>::infinity();
  return c;
}

ShadowRunner::ShadowRunner(MetricsRegistry& metrics, std::size_t capacity, EventLog* events,
                           std::size_t max_queued_bytes)
    : metrics_(metrics),
      capacity_(capacity),
      max_queued_bytes_(max_queued_bytes),
      events_(events),
      worker_([this] { run(); }) {}

ShadowRunner::~ShadowRunner() {
  std::deque<ShadowJob> dropped;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    dropped.swap(queue_);
    queued_job_bytes_.clear();
    queued_bytes_ = 0;
  }
  wake_.notify_all();
  worker_.join();
  for (const ShadowJob& job : dropped) {
    metrics_.shadow(job.primary->model_id, job.primary->version, job.shadow->version)
        ->dropped.fetch_add(1, std::memory_order_relaxed);
  }
}

bool ShadowRunner::offer(ShadowJob job) {
  const std::size_t bytes =
      sizeof(ShadowJob) + batch_bytes(job.batch) + values_bytes(job.primary_outputs);
  {
    std::lock_guard lock(mu_);
    if (!stop_ && queue_.size() < capacity_ && queued_bytes_ + bytes <= max_queued_bytes_) {
      queue_.push_back(std::move(job));
      queued_job_bytes_.push_back(bytes);
      queued_bytes_ += bytes;
      wake_.notify_one();
      return true;
    }
  }
  metrics_.shadow(job.primary->model_id, job.primary->version, job.shadow->version)
      ->dropped.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void ShadowRunner::wait_idle() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

void ShadowRunner::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    busy_ = true;
    {
      ShadowJob job = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= queued_job_bytes_.front();
      queued_job_bytes_.pop_front();
      lock.unlock();
      process(job);
    }  // the job, and the versions it holds, are released here, outside the lock
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
}

void ShadowRunner::trace(const ShadowJob& job, const Status& status,
                         std::chrono::system_clock::time_point start) const {
  Span span;
  span.trace_id = new_trace_id();
  span.span_id = new_span_id();
  span.name = "shadow";
  span.start_unix_ns = unix_nanos(start);
  span.end_unix_ns = unix_nanos_now();
  span.link = job.trace_link;
  span.attributes = {{"forklift.model.id", job.primary->model_id},
                     {"forklift.model.version", job.shadow->version},
                     {"forklift.primary_version", job.primary->version},
                     {"forklift.rows", static_cast<std::int64_t>(job.batch.rows())},
                     {"forklift.request_id", job.request_id}};
  if (!status.ok()) {
    span.error = true;
    span.status_message = status.message().substr(0, 200);
  }
  std::vector<Span> spans;
  spans.push_back(std::move(span));
  tracer_->submit(std::move(spans));
}

void ShadowRunner::process(ShadowJob& job) {
  auto m = metrics_.shadow(job.primary->model_id, job.primary->version, job.shadow->version);
  const auto start = std::chrono::steady_clock::now();
  const auto wall_start = std::chrono::system_clock::now();
  std::vector<Value> outputs;
  Status status;
  std::optional<Batch> remapped;
  const Batch* input = &job.batch;
  if (job.primary != job.shadow) {
    remapped = remap(job.batch, *job.shadow->schema);
    if (!remapped) status = InvalidArgument("the shadow needs features the request lacks");
    input = remapped ? &*remapped : nullptr;
  }
  // The shadow's model is guarded (guarded_model.h): a Status, one output per row.
  if (status.ok()) status = job.shadow->model->predict(*input, outputs);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  m->latency.observe(seconds);
  if (tracer_ != nullptr && job.trace_link) trace(job, status, wall_start);
  if (job.log_event && events_ != nullptr) {
    events_->offer(ShadowEvent{std::chrono::system_clock::now(), job.request_id,
                               job.primary->model_id, job.primary->version, job.shadow->version,
                               job.primary_outputs, status.ok() ? outputs : std::vector<Value>{},
                               status.ok() ? std::string() : status.message(), seconds});
  }
  if (!status.ok()) {
    m->errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const Comparison c =
        compare_outputs(job.primary_outputs[i], outputs[i], job.config.agree_tolerance);
    (c.agree ? m->agree : m->disagree).fetch_add(1, std::memory_order_relaxed);
    if (std::isfinite(c.abs_diff)) {
      m->abs_diff.observe(c.abs_diff);
      m->rel_diff.observe(c.rel_diff);
    }
  }
}

}  // namespace forklift
