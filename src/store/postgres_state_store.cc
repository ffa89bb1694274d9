#include "store/postgres_state_store.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "observability/log.h"

namespace forklift {
namespace {

constexpr auto kStateReconnectEvery = std::chrono::seconds(1);
// Re-read everything this often even without a notification: a NOTIFY sent while this replica
// was reconnecting is never delivered.
constexpr auto kFullReadEvery = std::chrono::seconds(5);
constexpr const char* kChannel = "forklift_state";

// Idempotent; the advisory lock keeps two replicas starting at once from racing on CREATE.
constexpr const char* kStateSchema = R"sql(
BEGIN;
SELECT pg_advisory_xact_lock(727274);
CREATE TABLE IF NOT EXISTS forklift_deployments (
  model_id   text PRIMARY KEY,
  revision   bigint NOT NULL,
  state      jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by text NOT NULL
);
CREATE TABLE IF NOT EXISTS forklift_audit (
  id       bigserial PRIMARY KEY,
  time     timestamptz NOT NULL,
  actor    text NOT NULL,
  model_id text NOT NULL,
  action   text NOT NULL,
  before   text NOT NULL,
  after    text NOT NULL,
  replica  text NOT NULL
);
ALTER TABLE forklift_audit ADD COLUMN IF NOT EXISTS reason text NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS forklift_leases (
  name       text PRIMARY KEY,
  holder     text NOT NULL,
  expires_at timestamptz NOT NULL
);
COMMIT;
)sql";

std::string replica_name() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(getpid());
}

}  // namespace

PostgresStateStore::PostgresStateStore(std::string conninfo,
                                       const std::filesystem::path& local_copy)
    : conninfo_(std::move(conninfo)),
      described_(pg::describe(conninfo_)),
      replica_(replica_name()),
      local_(local_copy.empty() ? std::make_unique<MemoryStateStore>()
                                : std::make_unique<FileStateStore>(local_copy)),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

PostgresStateStore::~PostgresStateStore() {
  if (wake_fd_ >= 0) close(wake_fd_);
}

void PostgresStateStore::set_connected(bool up, const std::string& why) {
  connected_.store(up, std::memory_order_relaxed);
  std::lock_guard lock(state_log_mu_);
  if (up && logged_down_) {
    log::info("state_store_connected", {{"store", describe()}});
    logged_down_ = false;
  } else if (!up && !logged_down_) {
    log::error("state_store_unavailable",
               {{"store", describe()},
                {"reason", why},
                {"effect", "serving the last known deployments; changes are refused"}});
    logged_down_ = true;
  }
}

Result<PGconn*> PostgresStateStore::writer() {
  // libpq notices a dead connection only when a statement fails on it. Changes are rare, so a
  // round trip first is cheap, and a database that restarted since the last change costs the
  // caller nothing instead of one failed change.
  if (writer_ && PQstatus(writer_.get()) == CONNECTION_OK &&
      pg::exec(writer_.get(), "SELECT 1").ok()) {
    return writer_.get();
  }
  writer_.reset();
  auto conn = pg::connect(conninfo_);
  if (!conn.ok()) {
    set_connected(false, conn.status().message());
    return conn.status();
  }
  if (auto r = pg::exec_script(conn->get(), kStateSchema); !r.ok()) {
    set_connected(false, r.status().message());
    return r.status();
  }
  writer_ = std::move(conn).value();
  return writer_.get();
}

Result<std::vector<std::pair<std::string, ModelControl>>> PostgresStateStore::read_changes(
    PGconn* conn) {
  auto rows = pg::exec(conn, "SELECT model_id, revision, state::text FROM forklift_deployments");
  if (!rows.ok()) return rows.status();
  std::vector<std::pair<std::string, ModelControl>> changes;
  const PGresult* r = rows->get();
  std::lock_guard lock(known_mu_);
  for (int i = 0; i < PQntuples(r); ++i) {
    std::string id(pg::text(r, i, 0));
    auto control = parse_model_control_json(pg::text(r, i, 2));
    if (!control.ok()) {
      log::error("state_row_unreadable",
                 {{"model_id", id}, {"reason", control.status().message()}});
      continue;
    }
    // The column is what commits compare: it wins over the copy inside the document.
    control->revision = std::stoll(std::string(pg::text(r, i, 1)));
    auto& known = known_[id];
    if (control->revision <= known) continue;
    known = control->revision;
    changes.emplace_back(std::move(id), std::move(control).value());
  }
  return changes;
}

Result<ControlState> PostgresStateStore::load() {
  std::lock_guard lock(write_mu_);
  auto conn = writer();
  Result<std::vector<std::pair<std::string, ModelControl>>> rows =
      conn.ok() ? read_changes(*conn)
                : Result<std::vector<std::pair<std::string, ModelControl>>>(conn.status());
  if (!rows.ok()) {
    set_connected(false, rows.status().message());
    writer_.reset();
    auto copy = local_->load();
    log::warn("state_from_local_copy",
              {{"store", local_->describe()},
               {"reason", rows.status().message()},
               {"models", copy.ok() ? std::int64_t(copy->models.size()) : std::int64_t(0)}});
    if (copy.ok()) {
      std::lock_guard known(known_mu_);
      for (const auto& [id, control] : copy->models) known_[id] = control.revision;
    }
    return copy;
  }
  set_connected(true, "");
  ControlState state;
  for (auto& [id, control] : *rows) state.models.emplace(id, std::move(control));
  if (Status s = local_->replace(state); !s.ok()) {
    log::warn("state_local_copy_not_saved", {{"reason", s.message()}});
  }
  return state;
}

Status PostgresStateStore::commit(std::string_view model_id, const ModelControl& next,
                                  const AuditEntry& entry) {
  std::lock_guard lock(write_mu_);
  auto conn = writer();
  if (!conn.ok()) {
    return Unavailable("the state store is unreachable, so the change was not made: " +
                       conn.status().message());
  }
  std::string state;
  append_model_control_json(state, next);
  const std::string id(model_id);
  const auto failed = [&](const Status& why) {
    if (PQstatus(*conn) != CONNECTION_OK) {
      writer_.reset();
      set_connected(false, why.message());
    } else {
      pg::exec(*conn, "ROLLBACK");
    }
    return Unavailable("the change could not be stored, so it was not made: " + why.message());
  };
  if (auto r = pg::exec(*conn, "BEGIN"); !r.ok()) return failed(r.status());
  // The row moves only from the revision this change was based on.
  auto written =
      next.revision == 1
          ? pg::exec(*conn,
                     "INSERT INTO forklift_deployments (model_id, revision, state, updated_by) "
                     "VALUES ($1, 1, $2::jsonb, $3) ON CONFLICT (model_id) DO NOTHING",
                     {id, state, replica_})
          : pg::exec(*conn,
                     "UPDATE forklift_deployments SET revision = $2, state = $3::jsonb, "
                     "updated_at = now(), updated_by = $4 WHERE model_id = $1 AND revision = $5",
                     {id, std::to_string(next.revision), state, replica_,
                      std::to_string(next.revision - 1)});
  if (!written.ok()) return failed(written.status());
  if (std::string_view(PQcmdTuples(written->get())) != "1") {
    pg::exec(*conn, "ROLLBACK");
    return FailedPrecondition("model '" + id +
                              "' was changed by another replica since this one last read it; "
                              "the change was not made. Try again in a moment.");
  }
  if (auto r = pg::exec(*conn,
                        "INSERT INTO forklift_audit "
                        "(time, actor, model_id, action, before, after, replica, reason) "
                        "VALUES ($1::timestamptz, $2, $3, $4, $5, $6, $7, $8)",
                        {entry.time, entry.actor, entry.model_id, entry.action, entry.before,
                         entry.after, replica_, entry.reason});
      !r.ok()) {
    return failed(r.status());
  }
  if (auto r = pg::exec(*conn, "SELECT pg_notify($1, $2)", {std::string(kChannel), id}); !r.ok()) {
    return failed(r.status());
  }
  if (auto r = pg::exec(*conn, "COMMIT"); !r.ok()) return failed(r.status());
  set_connected(true, "");
  {
    std::lock_guard known(known_mu_);
    auto& k = known_[id];
    k = std::max(k, next.revision);
  }
  if (Status s = local_->put(id, next); !s.ok()) {
    log::warn("state_local_copy_not_saved", {{"reason", s.message()}});
  }
  return Status::Ok();
}

Result<std::vector<AuditEntry>> PostgresStateStore::audit(std::size_t limit) {
  std::lock_guard lock(write_mu_);
  auto conn = writer();
  if (!conn.ok()) return Unavailable("the state store is unreachable: " + conn.status().message());
  auto rows =
      pg::exec(*conn,
               "SELECT to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
               "actor, model_id, action, before, after, reason FROM "
               "(SELECT * FROM forklift_audit ORDER BY id DESC LIMIT $1) newest ORDER BY id",
               {std::to_string(limit)});
  if (!rows.ok()) {
    if (PQstatus(*conn) != CONNECTION_OK) writer_.reset();
    return rows.status();
  }
  std::vector<AuditEntry> entries;
  const PGresult* r = rows->get();
  for (int i = 0; i < PQntuples(r); ++i) {
    const auto col = [&](int c) { return std::string(pg::text(r, i, c)); };
    entries.push_back(AuditEntry{col(0), col(1), col(2), col(3), col(4), col(5), col(6)});
  }
  return entries;
}

Result<bool> PostgresStateStore::hold_lease(std::string_view name, std::chrono::milliseconds ttl) {
  std::lock_guard lock(write_mu_);
  auto conn = writer();
  if (!conn.ok()) return Unavailable("the state store is unreachable: " + conn.status().message());
  // Taken when free or expired, renewed when ours; the database's clock decides, so replicas'
  // clocks need not agree.
  auto rows = pg::exec(*conn,
                       "INSERT INTO forklift_leases (name, holder, expires_at) "
                       "VALUES ($1, $2, now() + $3 * interval '1 millisecond') "
                       "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, "
                       "expires_at = EXCLUDED.expires_at "
                       "WHERE forklift_leases.holder = EXCLUDED.holder "
                       "OR forklift_leases.expires_at < now() RETURNING holder",
                       {std::string(name), replica_, std::to_string(ttl.count())});
  if (!rows.ok()) {
    if (PQstatus(*conn) != CONNECTION_OK) writer_.reset();
    return Unavailable("the lease could not be taken: " + rows.status().message());
  }
  return PQntuples(rows->get()) == 1;
}

void PostgresStateStore::release_lease(std::string_view name) {
  std::lock_guard lock(write_mu_);
  auto conn = writer();
  if (!conn.ok()) return;  // it expires by itself
  pg::exec(*conn, "DELETE FROM forklift_leases WHERE name = $1 AND holder = $2",
           {std::string(name), replica_});
}

void PostgresStateStore::sleep_until(std::chrono::steady_clock::time_point until) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
  if (left.count() <= 0) return;
  pollfd fd{wake_fd_, POLLIN, 0};
  if (poll(&fd, 1, static_cast<int>(left.count())) > 0) {
    std::uint64_t n = 0;
    [[maybe_unused]] auto got = read(wake_fd_, &n, sizeof n);
  }
}

std::vector<std::pair<std::string, ModelControl>> PostgresStateStore::wait_for_changes(
    std::chrono::milliseconds wait) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + wait;
  const auto lost = [&](const std::string& why) {
    listener_.reset();
    set_connected(false, why);
    next_connect_ = Clock::now() + kStateReconnectEvery;
    return std::vector<std::pair<std::string, ModelControl>>{};
  };
  bool full_read = false;
  if (!listener_) {
    if (Clock::now() < next_connect_) {
      sleep_until(std::min(deadline, next_connect_));
      return {};
    }
    auto conn = pg::connect(conninfo_);
    if (!conn.ok()) return lost(conn.status().message());
    if (auto r = pg::exec_script(conn->get(), kStateSchema); !r.ok())
      return lost(r.status().message());
    if (auto r = pg::exec(conn->get(), std::string("LISTEN ") + kChannel); !r.ok()) {
      return lost(r.status().message());
    }
    listener_ = std::move(conn).value();
    set_connected(true, "");
    full_read = true;  // whatever changed while away was not notified
  }
  if (!full_read) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd fds[2] = {{PQsocket(listener_.get()), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (poll(fds, 2, static_cast<int>(std::max<std::int64_t>(left.count(), 0))) > 0) {
      if (fds[1].revents & POLLIN) {
        std::uint64_t n = 0;
        [[maybe_unused]] auto got = read(wake_fd_, &n, sizeof n);
      }
      if (fds[0].revents != 0) {
        if (PQconsumeInput(listener_.get()) == 0 || PQstatus(listener_.get()) != CONNECTION_OK) {
          return lost(PQerrorMessage(listener_.get()));
        }
        while (PGnotify* n = PQnotifies(listener_.get())) {
          PQfreemem(n);
          full_read = true;
        }
      }
    }
    if (Clock::now() >= next_full_read_) full_read = true;
  }
  if (!full_read) return {};
  auto changes = read_changes(listener_.get());
  if (!changes.ok()) return lost(changes.status().message());
  next_full_read_ = Clock::now() + kFullReadEvery;
  for (const auto& [id, control] : *changes) {
    if (Status s = local_->put(id, control); !s.ok()) {
      log::warn("state_local_copy_not_saved", {{"reason", s.message()}});
    }
  }
  return std::move(changes).value();
}

void PostgresStateStore::interrupt() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto put = write(wake_fd_, &one, sizeof one);
}

}  // namespace forklift
