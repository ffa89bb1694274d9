#include "observability/event_log.h"

#include <algorithm>
#include <ctime>

#include "common/json_writer.h"
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

}  // namespace

Result<std::unique_ptr<EventLog>> EventLog::open(EventLogOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(options.directory, ec);
  if (ec) {
    return Unavailable("cannot create the events directory '" + options.directory.string() +
                       "': " + ec.message());
  }
  return std::make_unique<EventLog>(std::move(options), Key{});
}

EventLog::EventLog(EventLogOptions options, Key)
    : options_(std::move(options)), writer_([this] { run(); }) {}

EventLog::~EventLog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  writer_.join();
}

bool EventLog::offer(std::variant<PredictionEvent, ShadowEvent> event) {
  {
    std::lock_guard lock(mu_);
    if (!stop_ && queue_.size() < options_.queue_capacity) {
      queue_.push_back(std::move(event));
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

void EventLog::rotate_if_needed(std::size_t next_bytes) {
  if (file_.is_open() && file_bytes_ + next_bytes <= options_.max_file_bytes) return;
  if (file_.is_open()) file_.close();
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  const auto path = options_.directory / ("events-" + std::string(stamp) + "-" +
                                          std::to_string(++file_sequence_) + ".jsonl");
  file_.open(path, std::ios::app);
  file_bytes_ = 0;
  if (!file_) log::error("events_file_unwritable", {{"path", path.string()}});
  // Keep the newest max_files files.
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(options_.directory, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("events-") && name.ends_with(".jsonl")) files.push_back(e.path());
  }
  if (files.size() <= options_.max_files) return;
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) {
    std::error_code e1, e2;
    return std::filesystem::last_write_time(a, e1) < std::filesystem::last_write_time(b, e2);
  });
  for (std::size_t i = 0; i + options_.max_files < files.size(); ++i) {
    std::filesystem::remove(files[i], ec);
  }
}

void EventLog::write(const std::variant<PredictionEvent, ShadowEvent>& event, std::string& line) {
  if (const auto* p = std::get_if<PredictionEvent>(&event)) {
    const Schema& schema = p->batch.schema();
    for (std::size_t r = 0; r < p->batch.rows(); ++r) {
      append_header(line, "prediction", p->time, p->request_id);
      line += ",\"model_id\":";
      json::append_string(line, p->model->model_id);
      line += ",\"version\":";
      json::append_int(line, p->model->version);
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

void EventLog::run() {
  std::unique_lock lock(mu_);
  std::string lines;
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty() && stop_) break;
    std::deque<std::variant<PredictionEvent, ShadowEvent>> batch;
    batch.swap(queue_);
    busy_ = true;
    lock.unlock();
    for (const auto& event : batch) {
      lines.clear();
      write(event, lines);
      rotate_if_needed(lines.size());
      file_.write(lines.data(), static_cast<std::streamsize>(lines.size()));
      file_bytes_ += lines.size();
      written_.fetch_add(static_cast<std::uint64_t>(std::count(lines.begin(), lines.end(), '\n')),
                         std::memory_order_relaxed);
    }
    file_.flush();
    batch.clear();  // releases the loaded models the events held, outside the lock
    lock.lock();
    busy_ = false;
    if (queue_.empty()) drained_.notify_all();
  }
  if (file_.is_open()) file_.flush();
}

}  // namespace forklift
