// JSON the control plane reads back: a rollout policy (admin API, model.yaml), a model's stored
// control state with its rollout (state file, PostgreSQL rows another replica wrote) and a
// version's profile.json. Oracle: no crash or sanitizer report; whatever is accepted is valid
// and writes back to JSON that reads as the same thing.
#include <cstdlib>
#include <string>

#include "core/control_state.h"
#include "core/drift/feature_profile.h"
#include "core/rollout/rollout_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (auto policy = forklift::parse_rollout_policy_json(text); policy.ok()) {
    if (!policy->validate().ok()) std::abort();
    std::string again;
    forklift::append_rollout_policy_json(again, *policy);
    auto back = forklift::parse_rollout_policy_json(again);
    if (!back.ok() || !(*back == *policy)) std::abort();
  }
  if (auto control = forklift::parse_model_control_json(text); control.ok()) {
    std::string again;
    forklift::append_model_control_json(again, *control);
    if (!forklift::parse_model_control_json(again).ok()) std::abort();
    if (control->rollout && control->rollout->stage >= control->rollout->policy.stage_count()) {
      std::abort();
    }
  }
  if (auto profile = forklift::parse_feature_profile(text); profile.ok()) {
    auto back = forklift::parse_feature_profile(forklift::feature_profile_to_json(*profile));
    if (!back.ok()) std::abort();
  }
  return 0;
}
