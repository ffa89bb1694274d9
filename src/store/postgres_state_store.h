// The control state in PostgreSQL, shared by every replica that points at the same database.
//
// One row per model id (forklift_deployments) carries its deployment, history, unload flag and a
// revision; every change is one transaction that checks the revision it was based on (so two
// replicas changing one model at once cannot both win), appends to forklift_audit and sends a
// NOTIFY. Each replica LISTENs on a second connection and re-reads the rows when notified, and
// every few seconds in any case (notifications are lost while disconnected), so replicas converge
// within a fraction of a second of a change.
//
// Losing the database changes nothing that serves: each replica keeps its last known state (also
// kept in a local file, so a restart without the database starts from it too), refuses changes it
// cannot store (503), and reconnects by itself.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/state_store.h"
#include "store/pg.h"

namespace forklift {

class PostgresStateStore : public StateStore {
 public:
  // `local_copy`: a file that keeps the last state read or written (empty: none).
  PostgresStateStore(std::string conninfo, const std::filesystem::path& local_copy);
  ~PostgresStateStore() override;
  PostgresStateStore(const PostgresStateStore&) = delete;
  PostgresStateStore& operator=(const PostgresStateStore&) = delete;

  std::string describe() const override { return "postgres " + described_; }
  bool shared() const override { return true; }
  Result<ControlState> load() override;
  Status commit(std::string_view model_id, const ModelControl& next,
                const AuditEntry& entry) override;
  Result<std::vector<AuditEntry>> audit(std::size_t limit) override;
  std::vector<std::pair<std::string, ModelControl>> wait_for_changes(
      std::chrono::milliseconds wait) override;
  void interrupt() override;
  bool connected() const override { return connected_.load(std::memory_order_relaxed); }
  // A row in forklift_leases per lease, with its holder (host:pid) and expiry by the database's
  // clock: a replica that dies stops renewing, and another takes the lease once it expires.
  Result<bool> hold_lease(std::string_view name, std::chrono::milliseconds ttl) override;
  void release_lease(std::string_view name) override;

 private:
  Result<PGconn*> writer();  // under write_mu_; connects (and creates the tables) if needed
  void set_connected(bool up, const std::string& why);
  // Reads every model row; the ones with a revision newer than known_ are returned.
  Result<std::vector<std::pair<std::string, ModelControl>>> read_changes(PGconn* conn);
  void sleep_until(std::chrono::steady_clock::time_point until);

  const std::string conninfo_;
  const std::string described_;
  const std::string replica_;  // host:pid, in the audit table
  std::unique_ptr<MemoryStateStore> local_;

  std::mutex write_mu_;
  pg::Connection writer_;  // guarded by write_mu_

  // The follower's connection and timers: wait_for_changes' thread only.
  pg::Connection listener_;
  std::chrono::steady_clock::time_point next_connect_{};
  std::chrono::steady_clock::time_point next_full_read_{};
  int wake_fd_ = -1;  // an eventfd that interrupt() signals

  std::mutex known_mu_;
  std::map<std::string, std::int64_t, std::less<>> known_;  // revisions seen, guarded by known_mu_
  std::atomic<bool> connected_{false};
  std::mutex state_log_mu_;  // so "lost" and "connected" are logged once per transition
  bool logged_down_ = false;
};

}  // namespace forklift
