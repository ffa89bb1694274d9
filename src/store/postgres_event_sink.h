// Prediction events into a PostgreSQL table, in batches: each hand-over from the event log's
// writer thread becomes one COPY. While the database is unreachable the lines wait in memory (up
// to a limit in lines and in bytes, then the oldest are dropped and counted) and the sink
// reconnects once a second. A line the database refuses costs only itself: a refused COPY is
// split in halves and retried until the refused lines are found, dropped and counted (within 256
// splits per send; past that a refused range is dropped whole).
//
//   CREATE TABLE forklift_events (
//     id bigserial PRIMARY KEY, written_at timestamptz DEFAULT now(), event jsonb NOT NULL,
//     type text GENERATED ALWAYS AS (event->>'type') STORED,
//     model_id text GENERATED ALWAYS AS (event->>'model_id') STORED)
#pragma once

#include <chrono>
#include <deque>
#include <string>

#include "observability/event_sink.h"
#include "store/pg.h"

namespace forklift {

class PostgresEventSink : public EventSink {
 public:
  PostgresEventSink(std::string conninfo, std::size_t max_pending_lines,
                    std::size_t max_pending_bytes = kDefaultMaxPendingBytes);
  static constexpr std::size_t kDefaultMaxPendingBytes = 256u << 20;
  ~PostgresEventSink() override = default;

  std::string_view name() const override { return "postgres"; }
  void write(std::string_view lines, std::size_t count) override;
  void flush(bool final) override;

 private:
  bool send();  // true when nothing is pending any more
  enum class Copy { kWritten, kRefused, kDown };
  // One COPY of pending_[begin, end); `why` gets the database's message when not written.
  Copy copy_range(std::size_t begin, std::size_t end, std::string& why);
  struct CopyOutcome {
    std::size_t refused = 0;  // lines the database refused (dropped)
    std::size_t done = 0;     // end of the last range written or refused
    std::string refused_why;  // the database's first refusal
    std::string down_why;     // why the connection went down, if it did
  };
  // Writes pending_[begin, end), splitting a refused range to drop only the refused lines (once
  // the per-send budget of splits is spent, a refused range is dropped whole). False when the
  // connection went down (nothing more can be written now).
  bool write_isolating(std::size_t begin, std::size_t end, CopyOutcome& outcome);

  std::string conninfo_;
  std::size_t max_pending_lines_;
  std::size_t max_pending_bytes_;
  std::size_t pending_bytes_ = 0;
  std::size_t split_copies_left_ = 0;  // in the current send
  pg::Connection conn_;
  std::deque<std::string> pending_;  // one line each, already escaped for COPY's text format
  std::chrono::steady_clock::time_point next_connect_{};
  bool logged_down_ = false;
};

}  // namespace forklift
