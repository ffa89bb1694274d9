#pragma once

#include <string>

namespace forklift {

// `forklift selftest DIR`: loads every version in the repository (or only `model_id`'s) and runs
// its self-tests, without a server. Prints a report; returns 0 if all passed, 1 otherwise.
int run_selftest(const std::string& repository, const std::string& model_id);

}  // namespace forklift
