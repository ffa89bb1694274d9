// Where the control state (deployments, their history, unloads, the audit log) is kept.
//
// Three stores: in memory only (`--state-file none`), a JSON file beside the repository (the
// embedded default, one server), and PostgreSQL (several replicas sharing one state; see
// store/postgres_state_store.h). The registry writes through a store before it changes what
// serves, so a change that cannot be stored is never made.
#pragma once

#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/control_state.h"

namespace forklift {

class StateStore {
 public:
  virtual ~StateStore() = default;

  // For logs and the admin API: "memory", "file /path", "postgres host=... dbname=...".
  virtual std::string describe() const = 0;
  // Whether other processes may change the state (replicas): the server then follows it.
  virtual bool shared() const { return false; }
  // Whether the store can be reached now (a database may not be); /metrics shows it.
  virtual bool connected() const { return true; }

  // Everything stored, read once at start-up. An error means nothing usable was read; the
  // server then starts with the version policies' defaults.
  virtual Result<ControlState> load() = 0;
  // Stores one model's next control state and the audit entry of the change, atomically.
  // `next.revision` must be one more than the stored revision, else FailedPrecondition (another
  // replica changed it first). Unavailable when it cannot be stored. Either way nothing changed.
  virtual Status commit(std::string_view model_id, const ModelControl& next,
                        const AuditEntry& entry) = 0;
  // The newest `limit` audit entries, oldest first.
  virtual Result<std::vector<AuditEntry>> audit(std::size_t limit) = 0;

  // Shared stores: blocks up to `wait` for changes stored by other processes and returns them
  // (each model's whole control state, revision newer than any seen before). Called from one
  // thread only. The default has nothing to wait for.
  virtual std::vector<std::pair<std::string, ModelControl>> wait_for_changes(
      std::chrono::milliseconds wait);
  // Makes a blocked wait_for_changes return at once (shutdown).
  virtual void interrupt() {}

  // Leases, so that one process at a time does a job several could (driving a rollout). True
  // when this process holds `name` for the next `ttl` (taken now, or renewed); false when
  // another does. A store only this process uses always grants it.
  virtual Result<bool> hold_lease(std::string_view /*name*/, std::chrono::milliseconds /*ttl*/) {
    return true;
  }
  // Gives a held lease up at once (a clean shutdown), so another process need not wait for it
  // to expire.
  virtual void release_lease(std::string_view /*name*/) {}
};

// Keeps the state in this process only: lost at exit.
class MemoryStateStore : public StateStore {
 public:
  std::string describe() const override { return "memory"; }
  Result<ControlState> load() override;
  Status commit(std::string_view model_id, const ModelControl& next,
                const AuditEntry& entry) override;
  Result<std::vector<AuditEntry>> audit(std::size_t limit) override;

  // Replaces the whole state (the PostgreSQL store's local copy).
  Status replace(ControlState state);
  // Sets one model's state without an audit entry (a change another replica made).
  Status put(std::string_view model_id, const ModelControl& control);

 protected:
  // Called with the new state before it takes effect; an error undoes the change.
  virtual Status persist(const ControlState& /*state*/) { return Status::Ok(); }
  // Takes `state` as it is, without persisting it (what was just read).
  void adopt(ControlState state);

 private:
  std::mutex mu_;
  ControlState state_;  // guarded by mu_
};

// The embedded default: the state in one JSON file, replaced atomically (write, fsync, rename)
// at every change, so a crash at any moment leaves either the old file or the new one.
class FileStateStore : public MemoryStateStore {
 public:
  explicit FileStateStore(std::filesystem::path path) : path_(std::move(path)) {}
  std::string describe() const override { return "file " + path_.string(); }
  // A missing file is an empty state; an unreadable one is an error (and is left as it is).
  Result<ControlState> load() override;

 protected:
  Status persist(const ControlState& state) override;

 private:
  std::filesystem::path path_;
};

}  // namespace forklift
