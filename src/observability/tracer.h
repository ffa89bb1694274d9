// OpenTelemetry tracing: which requests are traced (parent-based sampling with a ratio), the spans
// a request records, and their export on a thread of their own, never the request's.
//
// A request that is not sampled costs one random draw (or reading its caller's flag) and nothing
// else. A sampled request records its spans in a RequestTrace; when it ends they go to a bounded
// queue (count and bytes), and the exporter thread sends them in batches (OTLP/HTTP,
// observability/otlp_exporter.h). A full queue drops the request's spans and counts them: a slow
// or dead collector never slows serving.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "forklift/status.h"
#include "observability/trace_context.h"

namespace forklift {

using AttributeValue = std::variant<std::string, std::int64_t, double, bool>;

struct SpanAttribute {
  std::string key;
  AttributeValue value;
};

enum class SpanKind { kInternal = 1, kServer = 2 };

struct Span {
  TraceId trace_id{};
  SpanId span_id{};
  std::optional<SpanId> parent;
  std::string trace_state;
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  std::uint64_t start_unix_ns = 0;
  std::uint64_t end_unix_ns = 0;
  std::vector<SpanAttribute> attributes;
  bool error = false;
  std::string status_message;  // with error
  // A span this one follows from without being its child (a shadow prediction's request).
  std::optional<std::pair<TraceId, SpanId>> link;

  std::size_t approximate_bytes() const;
};

std::uint64_t unix_nanos(std::chrono::system_clock::time_point t);
std::uint64_t unix_nanos_now();

// Sends a batch of spans somewhere (an OTLP collector, a test's list). Called only on the
// tracer's thread.
class SpanExporter {
 public:
  virtual ~SpanExporter() = default;
  virtual Status export_spans(const std::vector<Span>& spans) = 0;
};

struct TracerOptions {
  double sample_ratio = 1.0;  // for requests without a caller's decision: 0 to 1
  std::size_t max_queue_spans = 4096;
  std::size_t max_queue_bytes = 8 << 20;
  std::size_t max_batch_spans = 512;
  std::chrono::milliseconds flush_interval{1000};
};

struct TracerStats {
  std::uint64_t exported = 0;  // spans the exporter accepted
  std::uint64_t dropped = 0;   // spans dropped: the queue was full
  std::uint64_t failed = 0;    // spans in batches the exporter could not send
};

class Tracer {
 public:
  Tracer(TracerOptions options, std::unique_ptr<SpanExporter> exporter);
  // Sends what is queued (one last batch, bounded by the exporter's timeout), then stops.
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // Whether a request with this parent (null: none) is recorded: the caller's sampled flag when
  // it sent one (parent-based), else `sample_ratio` of trace ids (OpenTelemetry's
  // TraceIdRatioBased: the id's last 8 bytes below ratio x 2^64).
  bool sample(const TraceContext* parent, const TraceId& trace_id) const;

  // Queues `spans` for export; drops them (counted) when the queue has no room. Never blocks on
  // the exporter.
  void submit(std::vector<Span> spans);

  TracerStats stats() const;

 private:
  void run();

  const TracerOptions options_;
  std::unique_ptr<SpanExporter> exporter_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Span> queue_;        // under mu_
  std::size_t queued_bytes_ = 0;  // under mu_
  bool stop_ = false;             // under mu_
  std::atomic<std::uint64_t> exported_{0}, dropped_{0}, failed_{0};
  std::thread thread_;  // last: starts after the members it uses
};

// What one request records: its server span, its children, and the timings a Server-Timing
// header reports. Shared by what handles the request (the transport's router, the inference
// path, a batching thread), which may add children from different threads: it locks. finish()
// ends the server span when the answer is ready; the spans go to the tracer when the last holder
// lets go, so that work after the answer (the prediction event) is still recorded.
class RequestTrace {
 public:
  // `tracer` null or `sampled` false: only timings are kept (for Server-Timing).
  RequestTrace(Tracer* tracer, bool sampled, TraceId trace_id, std::optional<TraceContext> parent,
               std::string name, std::chrono::system_clock::time_point start);
  ~RequestTrace();  // submits the spans (when sampled)
  RequestTrace(const RequestTrace&) = delete;
  RequestTrace& operator=(const RequestTrace&) = delete;

  bool sampled() const { return sampled_; }
  const TraceId& trace_id() const { return server_.trace_id; }
  const SpanId& span_id() const { return server_.span_id; }
  std::chrono::system_clock::time_point start_time() const { return start_; }

  // A finished child of the server span.
  void child(std::string name, std::chrono::system_clock::time_point start,
             std::chrono::system_clock::time_point end, std::vector<SpanAttribute> attributes = {});
  void add_attribute(std::string key, AttributeValue value);
  void set_error(std::string message);

  // Milliseconds spent in the children named `name` (parse, queue, predict: Server-Timing's).
  double child_ms(std::string_view name) const;
  // "parse;dur=0.012, queue;dur=0, predict;dur=0.051, total;dur=0.070": the Server-Timing value
  // (durations in milliseconds), for the children recorded.
  std::string server_timing() const;

  // Ends the server span now (the first call counts).
  void finish();

 private:
  mutable std::mutex mu_;
  Tracer* tracer_;
  bool sampled_;
  Span server_;
  std::vector<Span> children_;        // sampled requests only
  std::array<double, 3> timed_ms_{};  // parse, queue, predict
  static int timed_index(std::string_view name);
  std::chrono::system_clock::time_point start_;
  std::optional<std::chrono::system_clock::time_point> end_;
};

// Starts a RequestTrace for a request that arrived at `start` with these headers, or returns
// null when it is neither sampled nor asked for its timings (`timing`).
std::shared_ptr<RequestTrace> start_request_trace(Tracer* tracer, std::string_view traceparent,
                                                  std::string_view tracestate, std::string name,
                                                  std::chrono::system_clock::time_point start,
                                                  bool timing);

}  // namespace forklift
