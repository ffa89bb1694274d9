#include "observability/tracer.h"

#include <algorithm>
#include <cstdio>

#include "common/thread_priority.h"

namespace forklift {

std::size_t Span::approximate_bytes() const {
  std::size_t n = sizeof(Span) + name.size() + trace_state.size() + status_message.size();
  for (const SpanAttribute& a : attributes) {
    n += sizeof(SpanAttribute) + a.key.size();
    if (const auto* s = std::get_if<std::string>(&a.value)) n += s->size();
  }
  return n;
}

std::uint64_t unix_nanos(std::chrono::system_clock::time_point t) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch());
  return ns.count() < 0 ? 0 : static_cast<std::uint64_t>(ns.count());
}

std::uint64_t unix_nanos_now() {
  return unix_nanos(std::chrono::system_clock::now());
}

Tracer::Tracer(TracerOptions options, std::unique_ptr<SpanExporter> exporter)
    : options_(options), exporter_(std::move(exporter)), thread_([this] { run(); }) {}

Tracer::~Tracer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool Tracer::sample(const TraceContext* parent, const TraceId& trace_id) const {
  if (parent != nullptr) return parent->sampled;
  if (options_.sample_ratio >= 1.0) return true;
  if (options_.sample_ratio <= 0.0) return false;
  std::uint64_t low = 0;
  for (std::size_t i = 8; i < 16; ++i) low = (low << 8) | trace_id[i];
  // ratio x 2^64, in long double: exact enough for any ratio a flag can say.
  const long double bound =
      static_cast<long double>(options_.sample_ratio) * 18446744073709551616.0L;
  return static_cast<long double>(low) < bound;
}

void Tracer::submit(std::vector<Span> spans) {
  if (spans.empty()) return;
  std::size_t bytes = 0;
  for (const Span& s : spans) bytes += s.approximate_bytes();
  {
    std::lock_guard lock(mu_);
    if (!stop_ && queue_.size() + spans.size() <= options_.max_queue_spans &&
        queued_bytes_ + bytes <= options_.max_queue_bytes) {
      for (Span& s : spans) queue_.push_back(std::move(s));
      queued_bytes_ += bytes;
      if (queue_.size() >= options_.max_batch_spans) wake_.notify_one();
      return;
    }
  }
  dropped_.fetch_add(spans.size(), std::memory_order_relaxed);
}

TracerStats Tracer::stats() const {
  return TracerStats{exported_.load(std::memory_order_relaxed),
                     dropped_.load(std::memory_order_relaxed),
                     failed_.load(std::memory_order_relaxed)};
}

void Tracer::run() {
  // Exporting is background work: it must not take CPU from serving.
  lower_this_thread_priority(10);
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait_for(lock, options_.flush_interval,
                   [this] { return stop_ || queue_.size() >= options_.max_batch_spans; });
    if (queue_.empty()) {
      if (stop_) return;
      continue;
    }
    std::vector<Span> batch;
    const std::size_t n = std::min(queue_.size(), options_.max_batch_spans);
    batch.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      queued_bytes_ -= std::min(queued_bytes_, queue_.front().approximate_bytes());
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    const bool stopping = stop_;
    lock.unlock();
    const Status sent = exporter_->export_spans(batch);
    (sent.ok() ? exported_ : failed_).fetch_add(batch.size(), std::memory_order_relaxed);
    lock.lock();
    // Stopping: one last batch, not a drain of a queue a dead collector would make endless.
    if (stopping) return;
  }
}

RequestTrace::RequestTrace(Tracer* tracer, bool sampled, TraceId trace_id,
                           std::optional<TraceContext> parent, std::string name,
                           std::chrono::system_clock::time_point start)
    : tracer_(tracer), sampled_(sampled && tracer != nullptr), start_(start) {
  server_.trace_id = trace_id;
  server_.span_id = new_span_id();
  if (parent) {
    server_.parent = parent->span_id;
    server_.trace_state = std::move(parent->tracestate);
  }
  server_.name = std::move(name);
  server_.kind = SpanKind::kServer;
  server_.start_unix_ns = unix_nanos(start);
}

RequestTrace::~RequestTrace() {
  if (!sampled_) return;
  if (!end_) end_ = std::chrono::system_clock::now();
  server_.end_unix_ns = unix_nanos(*end_);
  std::vector<Span> spans;
  spans.reserve(children_.size() + 1);
  spans.push_back(std::move(server_));
  for (Span& s : children_) spans.push_back(std::move(s));
  tracer_->submit(std::move(spans));
}

int RequestTrace::timed_index(std::string_view name) {
  if (name == "parse") return 0;
  if (name == "queue") return 1;
  if (name == "predict") return 2;
  return -1;
}

void RequestTrace::child(std::string name, std::chrono::system_clock::time_point start,
                         std::chrono::system_clock::time_point end,
                         std::vector<SpanAttribute> attributes) {
  std::lock_guard lock(mu_);
  if (const int i = timed_index(name); i >= 0) {
    timed_ms_[static_cast<std::size_t>(i)] +=
        std::chrono::duration<double, std::milli>(end - start).count();
  }
  if (!sampled_) return;  // only timed: no span to keep
  Span s;
  s.trace_id = server_.trace_id;
  s.span_id = new_span_id();
  s.parent = server_.span_id;
  s.name = std::move(name);
  s.start_unix_ns = unix_nanos(start);
  s.end_unix_ns = unix_nanos(end);
  s.attributes = std::move(attributes);
  children_.push_back(std::move(s));
}

void RequestTrace::add_attribute(std::string key, AttributeValue value) {
  std::lock_guard lock(mu_);
  server_.attributes.push_back({std::move(key), std::move(value)});
}

void RequestTrace::set_error(std::string message) {
  std::lock_guard lock(mu_);
  server_.error = true;
  server_.status_message = std::move(message);
}

double RequestTrace::child_ms(std::string_view name) const {
  std::lock_guard lock(mu_);
  const int i = timed_index(name);
  return i < 0 ? 0 : timed_ms_[static_cast<std::size_t>(i)];
}

std::string RequestTrace::server_timing() const {
  std::string out;
  char buffer[64];
  for (const char* name : {"parse", "queue", "predict"}) {
    std::snprintf(buffer, sizeof buffer, "%s;dur=%.3f", name, child_ms(name));
    if (!out.empty()) out += ", ";
    out += buffer;
  }
  std::chrono::system_clock::time_point end;
  {
    std::lock_guard lock(mu_);
    end = end_.value_or(std::chrono::system_clock::now());
  }
  std::snprintf(buffer, sizeof buffer, ", total;dur=%.3f",
                std::chrono::duration<double, std::milli>(end - start_).count());
  return out + buffer;
}

void RequestTrace::finish() {
  std::lock_guard lock(mu_);
  if (!end_) end_ = std::chrono::system_clock::now();
}

std::shared_ptr<RequestTrace> start_request_trace(Tracer* tracer, std::string_view traceparent,
                                                  std::string_view tracestate, std::string name,
                                                  std::chrono::system_clock::time_point start,
                                                  bool timing) {
  if (tracer == nullptr && !timing) return nullptr;
  std::optional<TraceContext> parent;
  if (!traceparent.empty()) parent = parse_traceparent(traceparent, tracestate);
  TraceId trace_id{};
  if (parent) {
    trace_id = parent->trace_id;
  } else if (tracer != nullptr && !timing) {
    // Most requests are not sampled: draw the id's last 8 bytes (what the ratio decides on)
    // first, and the rest only for a request that is.
    const SpanId low = new_span_id();
    std::copy(low.begin(), low.end(), trace_id.begin() + 8);
    if (!tracer->sample(nullptr, trace_id)) return nullptr;
    const SpanId high = new_span_id();
    std::copy(high.begin(), high.end(), trace_id.begin());
  } else {
    trace_id = new_trace_id();
  }
  const bool sampled = tracer != nullptr && tracer->sample(parent ? &*parent : nullptr, trace_id);
  if (!sampled && !timing) return nullptr;
  return std::make_shared<RequestTrace>(tracer, sampled, trace_id, std::move(parent),
                                        std::move(name), start);
}

}  // namespace forklift
