// Prediction events: one JSON line per predicted row (sampled), and one per shadow comparison,
// written by a background thread to rotating files. Serving threads only queue the event; when
// the bounded queue is full the event is dropped and counted, never waited for. A clean shutdown
// writes everything still queued.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "core/version_loader.h"

namespace forklift {

struct PredictionEvent {
  std::chrono::system_clock::time_point time;
  std::string request_id;
  std::shared_ptr<const LoadedModel> model;  // keeps the batch's schema alive
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

struct EventLogOptions {
  std::filesystem::path directory;
  double sample_rate = 1.0;               // fraction of requests whose rows are logged
  std::size_t queue_capacity = 65536;     // events waiting to be written
  std::size_t max_file_bytes = 64 << 20;  // rotate after this many bytes
  std::size_t max_files = 10;             // keep this many files; older ones are deleted
};

class EventLog {
  // Only open() may construct one; the key lets it use std::make_unique.
  class Key {
    friend class EventLog;
    Key() = default;
  };

 public:
  // Creates the directory if needed. Fails if it cannot be written.
  static Result<std::unique_ptr<EventLog>> open(EventLogOptions options);
  EventLog(EventLogOptions options, Key);
  ~EventLog();  // writes what is queued, then stops
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  double sample_rate() const { return options_.sample_rate; }
  // Queues an event; false (and counted) when the queue is full.
  bool offer(std::variant<PredictionEvent, ShadowEvent> event);
  // Blocks until everything queued so far is written and flushed (tests, shutdown).
  void flush();

  // Lines written (one per predicted row, one per shadow comparison).
  std::uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  void run();
  void write(const std::variant<PredictionEvent, ShadowEvent>& event, std::string& line);
  void rotate_if_needed(std::size_t next_bytes);

  EventLogOptions options_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable drained_;
  std::deque<std::variant<PredictionEvent, ShadowEvent>> queue_;
  bool busy_ = false;
  bool stop_ = false;
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::ofstream file_;  // used by the writer thread only
  std::size_t file_bytes_ = 0;
  std::uint64_t file_sequence_ = 0;
  std::thread writer_;  // last: starts after everything it uses
};

}  // namespace forklift
