#include "core/state_store.h"

#include <fstream>
#include <sstream>
#include <thread>

#include "common/file_util.h"

namespace forklift {

std::vector<std::pair<std::string, ModelControl>> StateStore::wait_for_changes(
    std::chrono::milliseconds wait) {
  std::this_thread::sleep_for(wait);
  return {};
}

Result<ControlState> MemoryStateStore::load() {
  std::lock_guard lock(mu_);
  return state_;
}

Status MemoryStateStore::commit(std::string_view model_id, const ModelControl& next,
                                const AuditEntry& entry) {
  std::lock_guard lock(mu_);
  auto it = state_.models.find(model_id);
  const std::int64_t stored = it == state_.models.end() ? 0 : it->second.revision;
  if (next.revision != stored + 1) {
    return FailedPrecondition("the state of model '" + std::string(model_id) +
                              "' changed meanwhile (stored revision " + std::to_string(stored) +
                              "); the change was not made, try again");
  }
  ControlState next_state = state_;
  next_state.models[std::string(model_id)] = next;
  next_state.audit.push_back(entry);
  if (next_state.audit.size() > kMaxAuditEntries) {
    next_state.audit.erase(next_state.audit.begin());
  }
  if (Status s = persist(next_state); !s.ok()) return s;
  state_ = std::move(next_state);
  return Status::Ok();
}

Result<std::vector<AuditEntry>> MemoryStateStore::audit(std::size_t limit) {
  std::lock_guard lock(mu_);
  const std::size_t n = std::min(limit, state_.audit.size());
  return std::vector<AuditEntry>(state_.audit.end() - static_cast<std::ptrdiff_t>(n),
                                 state_.audit.end());
}

Status MemoryStateStore::replace(ControlState state) {
  std::lock_guard lock(mu_);
  if (Status s = persist(state); !s.ok()) return s;
  state_ = std::move(state);
  return Status::Ok();
}

void MemoryStateStore::adopt(ControlState state) {
  std::lock_guard lock(mu_);
  state_ = std::move(state);
}

Status MemoryStateStore::put(std::string_view model_id, const ModelControl& control) {
  std::lock_guard lock(mu_);
  ControlState next_state = state_;
  next_state.models[std::string(model_id)] = control;
  if (Status s = persist(next_state); !s.ok()) return s;
  state_ = std::move(next_state);
  return Status::Ok();
}

Result<ControlState> FileStateStore::load() {
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) return MemoryStateStore::load();
  std::ifstream in(path_, std::ios::binary);
  if (!in) return Unavailable("cannot read the state file '" + path_.string() + "'");
  std::stringstream content;
  content << in.rdbuf();
  auto state = parse_control_state_json(content.str());
  if (!state.ok()) {
    return InvalidArgument("the state file '" + path_.string() +
                           "' is unreadable: " + state.status().message());
  }
  // Kept without writing it back: an unchanged file stays byte for byte what it was.
  adopt(*state);
  return state;
}

Status FileStateStore::persist(const ControlState& state) {
  if (Status s = write_file_atomically(path_, control_state_to_json(state)); !s.ok()) {
    return Unavailable("the state file '" + path_.string() + "' could not be written (" +
                       s.message() + "); the change was not made");
  }
  return Status::Ok();
}

}  // namespace forklift
