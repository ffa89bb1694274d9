// Model self-tests: selftest.jsonl beside each artifact lists inputs and the outputs they must
// give.
//
// Each non-blank line is a JSON object:
//   {"name": "short trip", "features": {...}, "expected": 412.5, "atol": 1e-6, "rtol": 1e-5}
// `name`, `atol` and `rtol` are optional. A case passes when |got - expected| <= atol +
// rtol*|expected| for every number (element-wise for vectors; exact equality for strings and
// booleans). The cases run one at a time and then all together as one batch, and both must pass:
// this also warms the model.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "forklift/runtime.h"

namespace forklift {

struct SelfTestReport {
  std::size_t cases = 0;
  std::size_t passed = 0;
  std::vector<std::string> failures;  // one readable line per failure
  double duration_seconds = 0;

  bool ok() const { return cases > 0 && failures.empty(); }
  std::string summary() const;
};

// Runs the self-tests in `file` against `model`. A missing or empty file is a failure: every
// version must prove itself before it takes traffic.
SelfTestReport run_selftests(const Model& model, const Schema& schema,
                             const std::filesystem::path& file);

// The self-tests' inputs alone, appended to `rows` (whose schema is the model's): what a runtime
// may check itself on at load (LoadContext::sample_rows). An error for a file that cannot be
// read or a line that does not parse (run_selftests reports those in full).
Status read_selftest_inputs(const std::filesystem::path& file, Batch& rows);

}  // namespace forklift
