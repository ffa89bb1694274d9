// The admin API's JSON answers, each beside the data it renders.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/model_state.h"
#include "observability/metrics.h"

namespace forklift {

// A model: its versions, states, self-tests and deployment. `details`: the reasons versions
// failed or were unloaded and their self-test failures, which can quote the repository's files:
// only for a request with the admin token.
void append_model(std::string& out, const ModelState& m, bool details);
// `"shadow_comparisons":[...]`: what shadowing `model_id` has shown so far (the UI's agreement).
void append_shadow_comparisons(std::string& out, std::string_view model_id,
                               const MetricsRegistry& metrics);
// {"model_id": ..., "deployment": {...}}
std::string deployment_answer(std::string_view model_id, const Deployment& d);
// `"drift":[{"version", "rows", "output_psi", "features": [{"feature", "psi", ...}]}]`: each
// serving version with a profile, over the last hour.
void append_drift(std::string& out, const ModelState& m);
// "lineage": {"<version>": {...}, ...}: each version's lineage.json (training/), for versions a
// training job or a snapshot made. A file that is not a JSON object of at most 1 MiB inside the
// repository is left out: its content is never echoed.
void append_lineage(std::string& out, const ModelState& m, const std::filesystem::path& repository);
// {"model_id": ..., "deployment": {...}, "rollout": {...} | null}
std::string rollout_answer(const ModelState& m);
// The Open Inference Protocol repository index: every version and its state.
std::string repository_index(const RegistrySnapshot& snapshot);
// A version's state as the repository extension names it: READY, LOADING or UNAVAILABLE.
const char* repository_state(VersionState state);

}  // namespace forklift
