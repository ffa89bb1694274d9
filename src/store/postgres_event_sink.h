// Prediction events into a PostgreSQL table, in batches: each hand-over from the event log's
// writer thread becomes one COPY. While the database is unreachable the lines wait in memory (up
// to a limit, then the oldest are dropped and counted) and the sink reconnects once a second.
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
  PostgresEventSink(std::string conninfo, std::size_t max_pending_lines);
  ~PostgresEventSink() override = default;

  std::string_view name() const override { return "postgres"; }
  void write(std::string_view lines, std::size_t count) override;
  void flush(bool final) override;

 private:
  bool send();  // true when nothing is pending any more

  std::string conninfo_;
  std::size_t max_pending_lines_;
  pg::Connection conn_;
  std::deque<std::string> pending_;  // one line each, already escaped for COPY's text format
  std::chrono::steady_clock::time_point next_connect_{};
  bool logged_down_ = false;
};

}  // namespace forklift
