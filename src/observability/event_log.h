// Prediction events: one JSON line per predicted row (sampled), one per shadow comparison and one
// per feedback label,
// written by a background thread to its sinks (rotating files, a PostgreSQL table). Serving
// threads only queue the event; when the bounded queue is full the event is dropped and counted,
// never waited for. A clean shutdown writes everything still queued.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "forklift/types.h"
#include "observability/event_sink.h"

namespace forklift {

// Holds the version's name and schema, never the loaded version itself: the event thread must not
// be the one to drop a version's last reference (versions are freed on the loader thread).
struct PredictionEvent {
  std::chrono::system_clock::time_point time;
  std::string request_id;
  std::string model_id;
  std::int64_t version = 0;
  std::shared_ptr<const Schema> schema;  // what `batch` points at, kept alive with it
  Batch batch;
  std::vector<Value> outputs;
  double latency_seconds = 0;
};

struct ShadowEvent {
  std::chrono::system_clock::time_point time;
  std::string request_id;
  std::string model_id;
  std::int64_t primary_version = 0;
  std::int64_t shadow_version = 0;
  std::vector<Value> primary_outputs;
  std::vector<Value> shadow_outputs;  // empty when the shadow failed
  std::string error;
  double shadow_latency_seconds = 0;
};

// A feedback label (docs/how-to/send-feedback-labels.md), with the prediction it was joined with
// when it was found.
struct FeedbackEvent {
  std::chrono::system_clock::time_point time;
  std::string request_id;
  bool matched = false;
  std::string model_id;  // the prediction's, when matched
  std::int64_t version = 0;
  std::vector<double> labels;   // one per row
  std::vector<double> outputs;  // the prediction's, one per row, when matched
};

using Event = std::variant<PredictionEvent, ShadowEvent, FeedbackEvent>;

struct EventLogOptions {
  double sample_rate = 1.0;             // fraction of requests whose rows are logged
  std::size_t queue_capacity = 65536;   // events waiting to be written
  std::size_t queue_bytes = 64u << 20;  // and the bytes their rows and outputs take
};

class EventLog {
 public:
  // Every line goes to every sink.
  EventLog(EventLogOptions options, std::vector<std::unique_ptr<EventSink>> sinks);
  ~EventLog();  // writes what is queued, then stops
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  double sample_rate() const { return options_.sample_rate; }
  // Queues an event; false (and counted) when the queue is full, in events or in bytes.
  bool offer(Event event);
  // Blocks until everything queued so far is written and flushed (tests, shutdown).
  void flush();

  // Events dropped because the queue was full.
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // Per sink: lines written and lines the sink gave up on.
  const std::vector<std::unique_ptr<EventSink>>& sinks() const { return sinks_; }

 private:
  void run();

  EventLogOptions options_;
  std::vector<std::unique_ptr<EventSink>> sinks_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable drained_;
  std::deque<Event> queue_;
  std::size_t queued_bytes_ = 0;  // of queue_, counted by event_bytes
  bool busy_ = false;
  bool stop_ = false;
  std::atomic<std::uint64_t> dropped_{0};
  std::thread writer_;  // last: starts after everything it uses
};

}  // namespace forklift
