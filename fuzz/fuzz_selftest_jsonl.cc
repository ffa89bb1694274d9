// selftest.jsonl text through the self-test runner, against model `m` of fuzz_common.h.
// Oracle: no crash or sanitizer report; the report counts no more passes than cases.
#include <unistd.h>

#include "core/selftest.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static forklift::fuzz::Served served;
  static const std::filesystem::path file =
      served.root / ("selftest-" + std::to_string(getpid()) + ".jsonl");
  forklift::fuzz::write(file, std::string(reinterpret_cast<const char*>(data), size));
  const auto snapshot = served.registry.snapshot();
  const auto& model = *snapshot->models.at("m").serving.begin()->second;
  const forklift::SelfTestReport report =
      forklift::run_selftests(*model.model, model.manifest.schema, file);
  if (report.passed > report.cases) std::abort();
  return 0;
}
