#include "observability/event_log.h"

#include <algorithm>
#include <ctime>

#include "common/json_writer.h"
#include "common/value_bytes.h"
#include "observability/log.h"

namespace forklift {
namespace {

void append_time(std::string& out, std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%06dZ", static_cast<int>(micros));
  out += buf;
}

void append_header(std::string& out, const char* type, std::chrono::system_clock::time_point t,
                   const std::string& request_id) {
  out += "{\"type\":\"";
  out += type;
  out += "\",\"time\":\"";
  append_time(out, t);
  out += "\",\"request_id\":";
  json::append_string(out, request_id);
}

// Appends the event's JSON lines to `line`.
void append_event(const Event& event, std::string& line) {
  if (const auto* p = std::get_if<PredictionEvent>(&event)) {
    const Schema& schema = p->batch.schema();
    for (std::size_t r = 0; r < p->batch.rows(); ++r) {
      append_header(line, "prediction", p->time, p->request_id);
      line += ",\"model_id\":";
      json::append_string(line, p->model_id);
      line += ",\"version\":";
      json::append_int(line, p->version);
      if (p->batch.rows() > 1) {
        line += ",\"row\":";
        json::append_int(line, static_cast<std::int64_t>(r));
      }
      line += ",\"features\":{";
      const RowView row = p->batch.row(r);
      for (std::size_t f = 0; f < row.size(); ++f) {
        if (f) line.push_back(',');
        json::append_string(line, schema.features[f].name);
        line.push_back(':');
        json::append_value(line, row[f]);
      }
      line += "},\"output\":";
      json::append_value(line, p->outputs[r]);
      line += ",\"latency_us\":";
      json::append_int(line, static_cast<std::int64_t>(p->latency_seconds * 1e6));
      line += "}\n";
    }
    return;
  }
  if (const auto* f = std::get_if<FeedbackEvent>(&event)) {
    for (std::size_t r = 0; r < f->labels.size(); ++r) {
      append_header(line, "feedback", f->time, f->request_id);
      line += ",\"matched\":";
      line += f->matched ? "true" : "false";
      if (f->matched) {
        line += ",\"model_id\":";
        json::append_string(line, f->model_id);
        line += ",\"version\":";
        json::append_int(line, f->version);
      }
      if (f->labels.size() > 1) {
        line += ",\"row\":";
        json::append_int(line, static_cast<std::int64_t>(r));
      }
      line += ",\"label\":";
      json::append_double(line, f->labels[r]);
      if (r < f->outputs.size()) {
        line += ",\"output\":";
        json::append_double(line, f->outputs[r]);
      }
      line += "}\n";
    }
    return;
  }
  const auto& s = std::get<ShadowEvent>(event);
  append_header(line, "shadow", s.time, s.request_id);
  line += ",\"model_id\":";
  json::append_string(line, s.model_id);
  line += ",\"primary_version\":";
  json::append_int(line, s.primary_version);
  line += ",\"shadow_version\":";
  json::append_int(line, s.shadow_version);
  const auto outputs = [&](const std::vector<Value>& values) {
    line.push_back('[');
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i) line.push_back(',');
      json::append_value(line, values[i]);
    }
    line.push_back(']');
  };
  line += ",\"primary_outputs\":";
  outputs(s.primary_outputs);
  if (s.error.empty()) {
    line += ",\"shadow_outputs\":";
    outputs(s.shadow_outputs);
  } else {
    line += ",\"error\":";
    json::append_string(line, s.error);
  }
  line += ",\"shadow_latency_us\":";
  json::append_int(line, static_cast<std::int64_t>(s.shadow_latency_seconds * 1e6));
  line += "}\n";
}

}  // namespace

EventLog::EventLog(EventLogOptions options, std::vector<std::unique_ptr<EventSink>> sinks)
    : options_(options), sinks_(std::move(sinks)), writer_([this] { run(); }) {}

EventLog::~EventLog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  writer_.join();
}

namespace {

std::size_t event_bytes(const Event& event) {
  if (const auto* p = std::get_if<PredictionEvent>(&event)) {
    return sizeof(event) + batch_bytes(p->batch) + values_bytes(p->outputs);
  }
  if (const auto* f = std::get_if<FeedbackEvent>(&event)) {
    return sizeof(event) + f->request_id.size() + f->model_id.size() +
           (f->labels.size() + f->outputs.size()) * sizeof(double);
  }
  const auto& s = std::get<ShadowEvent>(event);
  return sizeof(event) + values_bytes(s.primary_outputs) + values_bytes(s.shadow_outputs) +
         s.error.size();
}

}  // namespace

bool EventLog::offer(Event event) {
  const std::size_t bytes = event_bytes(event);
  {
    std::lock_guard lock(mu_);
    if (!stop_ && queue_.size() < options_.queue_capacity &&
        queued_bytes_ + bytes <= options_.queue_bytes) {
      queue_.push_back(std::move(event));
      queued_bytes_ += bytes;
      wake_.notify_one();
      return true;
    }
  }
  dropped_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void EventLog::flush() {
  std::unique_lock lock(mu_);
  drained_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

void EventLog::run() {
  // Lines are handed to the sinks in chunks of about this size.
  constexpr std::size_t kChunkBytes = 1 << 20;
  // Sinks that batch (PostgreSQL) are given a chance to send at least this often.
  constexpr auto kFlushEvery = std::chrono::milliseconds(200);
  std::unique_lock lock(mu_);
  std::string lines;
  std::size_t count = 0;
  const auto hand_over = [&] {
    if (count == 0) return;
    for (auto& sink : sinks_) sink->write(lines, count);
    lines.clear();
    count = 0;
  };
  for (;;) {
    wake_.wait_for(lock, kFlushEvery, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty() && stop_) break;
    std::deque<Event> batch;
    batch.swap(queue_);
    queued_bytes_ = 0;
    busy_ = true;
    lock.unlock();
    for (const auto& event : batch) {
      const std::size_t before = lines.size();
      append_event(event, lines);
      count += static_cast<std::size_t>(
          std::count(lines.begin() + static_cast<std::ptrdiff_t>(before), lines.end(), '\n'));
      if (lines.size() >= kChunkBytes) hand_over();
    }
    hand_over();
    for (auto& sink : sinks_) sink->flush(false);
    batch.clear();  // releases the loaded models the events held, outside the lock
    lock.lock();
    busy_ = false;
    if (queue_.empty()) drained_.notify_all();
  }
  lock.unlock();
  for (auto& sink : sinks_) sink->flush(true);
}

}  // namespace forklift
