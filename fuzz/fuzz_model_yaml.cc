// model.yaml text through the manifest parser. Oracle: no crash, no exception escaping (the
// parser must turn every problem into a Status), no sanitizer report; a manifest it accepts has
// a runtime, an artifact inside the version directory and at least one feature.
#include <cstdlib>
#include <string>

#include "core/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto manifest = forklift::parse_manifest_text(text, "fuzz/model.yaml");
  if (manifest.ok()) {
    if (manifest->runtime.empty() || manifest->artifact.empty() ||
        manifest->artifact.find("..") != std::string::npos || manifest->artifact[0] == '/' ||
        manifest->schema.features.empty()) {
      std::abort();
    }
  }
  return 0;
}
