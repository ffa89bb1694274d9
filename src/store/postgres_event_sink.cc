#include "store/postgres_event_sink.h"

#include "observability/log.h"

namespace forklift {
namespace {

constexpr const char* kEventsSchema = R"sql(
BEGIN;
SELECT pg_advisory_xact_lock(727275);
CREATE TABLE IF NOT EXISTS forklift_events (
  id         bigserial PRIMARY KEY,
  written_at timestamptz NOT NULL DEFAULT now(),
  event      jsonb NOT NULL,
  type       text GENERATED ALWAYS AS (event->>'type') STORED,
  model_id   text GENERATED ALWAYS AS (event->>'model_id') STORED
);
CREATE INDEX IF NOT EXISTS forklift_events_model_time ON forklift_events (model_id, written_at);
CREATE INDEX IF NOT EXISTS forklift_events_request_id ON forklift_events ((event->>'request_id'));
COMMIT;
)sql";

constexpr auto kEventsReconnectEvery = std::chrono::seconds(1);
// Splits of a refused COPY per send: enough to find a handful of bad lines among thousands.
constexpr std::size_t kMaxSplitCopies = 256;

// COPY's text format reads a backslash as an escape: JSON's own escapes must be doubled. JSON
// lines hold no raw tab or newline (the writer escapes control characters). jsonb refuses the
// escape \u0000 (a NUL in a client's string): it becomes \ufffd, the replacement character.
std::string copy_escaped(std::string_view line) {
  std::string out;
  out.reserve(line.size() + 8);
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    // An escape: its backslash doubled, and the character after it taken with it, so that an
    // escaped backslash followed by "u0000" is not read as a NUL escape.
    if (line.substr(i, 6) == "\\u0000") {
      out += "\\\\ufffd";
      i += 5;
      continue;
    }
    out += "\\\\";
    if (i + 1 < line.size()) {
      // The escaped character: a backslash itself (JSON's \\) is doubled for COPY too.
      const char next = line[++i];
      if (next == '\\') {
        out += "\\\\";
      } else {
        out.push_back(next);
      }
    }
  }
  out.push_back('\n');
  return out;
}

}  // namespace

PostgresEventSink::PostgresEventSink(std::string conninfo, std::size_t max_pending_lines,
                                     std::size_t max_pending_bytes)
    : conninfo_(std::move(conninfo)),
      max_pending_lines_(max_pending_lines),
      max_pending_bytes_(max_pending_bytes) {}

void PostgresEventSink::write(std::string_view lines, std::size_t /*count*/) {
  while (!lines.empty()) {
    const std::size_t end = lines.find('\n');
    const std::string_view line = lines.substr(0, end);
    if (!line.empty()) {
      pending_.push_back(copy_escaped(line));
      pending_bytes_ += pending_.back().size();
    }
    if (end == std::string_view::npos) break;
    lines.remove_prefix(end + 1);
  }
  // Bounded in lines and bytes: while the database is away the oldest lines go first, counted.
  while (!pending_.empty() &&
         (pending_.size() > max_pending_lines_ || pending_bytes_ > max_pending_bytes_)) {
    pending_bytes_ -= pending_.front().size();
    pending_.pop_front();
    dropped_.fetch_add(1, std::memory_order_relaxed);
  }
}

void PostgresEventSink::flush(bool final) {
  if (send() || !final) return;
  // Stopping and the database cannot take them: counted, not silently lost.
  dropped_.fetch_add(pending_.size(), std::memory_order_relaxed);
  log::error("events_not_written",
             {{"sink", "postgres"}, {"events", static_cast<std::int64_t>(pending_.size())}});
  pending_.clear();
  pending_bytes_ = 0;
}

bool PostgresEventSink::send() {
  if (pending_.empty()) return true;
  const auto down = [&](const std::string& why) {
    conn_.reset();
    next_connect_ = std::chrono::steady_clock::now() + kEventsReconnectEvery;
    if (!logged_down_) {
      log::error("events_postgres_unavailable",
                 {{"reason", why},
                  {"pending", static_cast<std::int64_t>(pending_.size())},
                  {"effect", "events wait in memory, oldest dropped beyond the limit"}});
      logged_down_ = true;
    }
    return false;
  };
  if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) {
    if (std::chrono::steady_clock::now() < next_connect_) return false;
    auto conn = pg::connect(conninfo_);
    if (!conn.ok()) return down(conn.status().message());
    if (auto r = pg::exec_script(conn->get(), kEventsSchema); !r.ok())
      return down(r.status().message());
    conn_ = std::move(conn).value();
    if (logged_down_) {
      log::info("events_postgres_connected",
                {{"pending", static_cast<std::int64_t>(pending_.size())}});
      logged_down_ = false;
    }
  }
  CopyOutcome outcome;
  split_copies_left_ = kMaxSplitCopies;
  const bool all = write_isolating(0, pending_.size(), outcome);
  if (outcome.refused > 0) {
    dropped_.fetch_add(outcome.refused, std::memory_order_relaxed);
    log::error("events_rejected", {{"sink", "postgres"},
                                   {"reason", outcome.refused_why},
                                   {"events", static_cast<std::int64_t>(outcome.refused)}});
  }
  // Ranges are handled in order and each COPY is all or nothing: the first `done` lines are
  // written or refused, the rest wait for the next connection.
  written_.fetch_add(outcome.done - outcome.refused, std::memory_order_relaxed);
  for (std::size_t i = 0; i < outcome.done; ++i) {
    pending_bytes_ -= pending_.front().size();
    pending_.pop_front();
  }
  return all ? true : down(outcome.down_why);
}

PostgresEventSink::Copy PostgresEventSink::copy_range(std::size_t begin, std::size_t end,
                                                      std::string& why) {
  PGconn* c = conn_.get();
  {
    pg::ResultHandle start(PQexec(c, "COPY forklift_events (event) FROM STDIN"));
    if (!start || PQresultStatus(start.get()) != PGRES_COPY_IN) {
      why = PQerrorMessage(c);
      return Copy::kDown;
    }
  }
  // In chunks of about 256 KiB per call.
  std::string chunk;
  for (std::size_t i = begin; i < end; ++i) {
    chunk += pending_[i];
    if (chunk.size() >= (256u << 10) || i + 1 == end) {
      if (PQputCopyData(c, chunk.data(), static_cast<int>(chunk.size())) != 1) {
        why = PQerrorMessage(c);
        return Copy::kDown;
      }
      chunk.clear();
    }
  }
  if (PQputCopyEnd(c, nullptr) != 1) {
    why = PQerrorMessage(c);
    return Copy::kDown;
  }
  bool ok = true;
  while (pg::ResultHandle r{PQgetResult(c)}) {
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      ok = false;
      why = PQresultErrorMessage(r.get());
    }
  }
  if (ok) return Copy::kWritten;
  return PQstatus(c) == CONNECTION_OK ? Copy::kRefused : Copy::kDown;
}

bool PostgresEventSink::write_isolating(std::size_t begin, std::size_t end, CopyOutcome& outcome) {
  if (begin == end) return true;
  std::string why;
  switch (copy_range(begin, end, why)) {
    case Copy::kWritten:
      outcome.done = end;
      return true;
    case Copy::kDown:
      outcome.down_why = std::move(why);
      return false;
    case Copy::kRefused:
      if (outcome.refused_why.empty()) outcome.refused_why = std::move(why);
      break;
  }
  // The database refused a row in the range (not the connection): halves, down to the line,
  // within a budget of COPYs per send (a table that refuses every row must not cost one COPY
  // per line).
  if (end - begin == 1 || split_copies_left_ == 0) {
    outcome.refused += end - begin;
    outcome.done = end;
    return true;
  }
  --split_copies_left_;
  const std::size_t middle = begin + (end - begin) / 2;
  return write_isolating(begin, middle, outcome) && write_isolating(middle, end, outcome);
}

}  // namespace forklift
