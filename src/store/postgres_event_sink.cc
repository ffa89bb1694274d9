#include "store/postgres_event_sink.h"

#include "observability/log.h"

namespace forklift {
namespace {

constexpr const char* kSchema = R"sql(
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
COMMIT;
)sql";

constexpr auto kReconnectEvery = std::chrono::seconds(1);

// COPY's text format reads a backslash as an escape: JSON's own escapes must be doubled. JSON
// lines hold no raw tab or newline (the writer escapes control characters).
std::string copy_escaped(std::string_view line) {
  std::string out;
  out.reserve(line.size() + 8);
  for (char c : line) {
    if (c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\n');
  return out;
}

}  // namespace

PostgresEventSink::PostgresEventSink(std::string conninfo, std::size_t max_pending_lines)
    : conninfo_(std::move(conninfo)), max_pending_lines_(max_pending_lines) {}

void PostgresEventSink::write(std::string_view lines, std::size_t /*count*/) {
  while (!lines.empty()) {
    const std::size_t end = lines.find('\n');
    const std::string_view line = lines.substr(0, end);
    if (!line.empty()) pending_.push_back(copy_escaped(line));
    if (end == std::string_view::npos) break;
    lines.remove_prefix(end + 1);
  }
  // Bounded: while the database is away the oldest lines go first, counted.
  while (pending_.size() > max_pending_lines_) {
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
}

bool PostgresEventSink::send() {
  if (pending_.empty()) return true;
  const auto down = [&](const std::string& why) {
    conn_.reset();
    next_connect_ = std::chrono::steady_clock::now() + kReconnectEvery;
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
    if (auto r = pg::exec_script(conn->get(), kSchema); !r.ok()) return down(r.status().message());
    conn_ = std::move(conn).value();
    if (logged_down_) {
      log::info("events_postgres_connected",
                {{"pending", static_cast<std::int64_t>(pending_.size())}});
      logged_down_ = false;
    }
  }
  PGconn* c = conn_.get();
  {
    pg::ResultHandle start(PQexec(c, "COPY forklift_events (event) FROM STDIN"));
    if (!start || PQresultStatus(start.get()) != PGRES_COPY_IN) return down(PQerrorMessage(c));
  }
  // One COPY for everything pending, in chunks of about 256 KiB per call.
  std::string chunk;
  for (const std::string& line : pending_) {
    chunk += line;
    if (chunk.size() >= (256u << 10)) {
      if (PQputCopyData(c, chunk.data(), static_cast<int>(chunk.size())) != 1) {
        return down(PQerrorMessage(c));
      }
      chunk.clear();
    }
  }
  if (!chunk.empty() && PQputCopyData(c, chunk.data(), static_cast<int>(chunk.size())) != 1) {
    return down(PQerrorMessage(c));
  }
  if (PQputCopyEnd(c, nullptr) != 1) return down(PQerrorMessage(c));
  bool ok = true;
  std::string why;
  while (pg::ResultHandle r{PQgetResult(c)}) {
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      ok = false;
      why = PQresultErrorMessage(r.get());
    }
  }
  if (!ok) {
    if (PQstatus(c) != CONNECTION_OK) return down(why);
    // The database refused the rows themselves (not the connection): retrying cannot help.
    dropped_.fetch_add(pending_.size(), std::memory_order_relaxed);
    log::error("events_rejected", {{"sink", "postgres"},
                                   {"reason", why},
                                   {"events", static_cast<std::int64_t>(pending_.size())}});
    pending_.clear();
    return true;
  }
  written_.fetch_add(pending_.size(), std::memory_order_relaxed);
  pending_.clear();
  return true;
}

}  // namespace forklift
