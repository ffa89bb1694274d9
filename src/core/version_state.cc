#include "core/version_state.h"

#include "observability/log.h"

namespace forklift {

std::string_view to_string(VersionState state) {
  switch (state) {
    case VersionState::kLoading:
      return "loading";
    case VersionState::kSelfTesting:
      return "self-testing";
    case VersionState::kReady:
      return "ready";
    case VersionState::kFailed:
      return "failed";
    case VersionState::kUnloading:
      return "unloading";
    case VersionState::kUnloaded:
      return "unloaded";
  }
  return "unknown";
}

bool allowed_transition(VersionState from, VersionState to) {
  using S = VersionState;
  switch (from) {
    case S::kLoading:
      return to == S::kSelfTesting || to == S::kFailed;
    case S::kSelfTesting:
      return to == S::kReady || to == S::kFailed;
    case S::kReady:
      return to == S::kUnloading;
    case S::kFailed:
    case S::kUnloaded:
    case S::kUnloading:
      return to == S::kLoading || (from == S::kUnloading && to == S::kUnloaded);
  }
  return false;
}

void VersionStatus::move_to(VersionState to, std::string why) {
  if (!allowed_transition(state, to)) {
    log::error("version_state_invalid", {{"version", version},
                                         {"from", std::string(to_string(state))},
                                         {"to", std::string(to_string(to))}});
  }
  state = to;
  message = std::move(why);
}

}  // namespace forklift
