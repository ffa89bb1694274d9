// Where prediction events go once the event log's writer thread has turned them into JSON lines:
// rotating files (the embedded default) and, optionally, a PostgreSQL table
// (store/postgres_event_sink.h). A sink is used by that one thread only.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/file_util.h"
#include "forklift/status.h"

namespace forklift {

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual std::string_view name() const = 0;  // "file", "postgres": the metrics label
  // Takes `count` complete JSON lines, each ending in '\n'.
  virtual void write(std::string_view lines, std::size_t count) = 0;
  // The queue is empty for now (or, with `final`, the server is stopping): write out what is
  // buffered. A final flush that cannot write counts what it gives up as dropped.
  virtual void flush(bool final) = 0;

  std::uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 protected:
  std::atomic<std::uint64_t> written_{0};  // lines stored
  std::atomic<std::uint64_t> dropped_{0};  // lines given up on
};

// JSON-lines files named events-<UTC time>-<n>.jsonl, a new one after `max_file_bytes`, the
// newest `max_files` kept. Files only ever hold whole lines: a write that fails part-way (a full
// disk) is cut back to the last whole line and its lines counted as dropped; at start, a file
// left with a torn last line by a killed process is cut back the same way.
class FileEventSink : public EventSink {
  class Key {
    friend class FileEventSink;
    Key() = default;
  };

 public:
  // Creates the directory if needed; fails if it cannot.
  static Result<std::unique_ptr<FileEventSink>> open(std::filesystem::path directory,
                                                     std::size_t max_file_bytes,
                                                     std::size_t max_files);
  FileEventSink(std::filesystem::path directory, std::size_t max_file_bytes, std::size_t max_files,
                Key);

  std::string_view name() const override { return "file"; }
  void write(std::string_view lines, std::size_t count) override;
  void flush(bool final) override;

 private:
  void rotate_if_needed(std::size_t next_bytes);
  void cut_torn_files();

  std::filesystem::path directory_;
  std::size_t max_file_bytes_;
  std::size_t max_files_;
  UniqueFd file_;
  std::filesystem::path file_path_;
  std::size_t file_bytes_ = 0;
  bool failing_ = false;  // the last write failed: logged once, and again when writes resume
  std::uint64_t file_sequence_ = 0;
};

}  // namespace forklift
