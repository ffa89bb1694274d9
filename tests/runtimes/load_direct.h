// Loads a version through its runtime only (no self-tests), to test a runtime on its own.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/manifest.h"
#include "core/runtime_table.h"
#include "runtimes/builtin.h"

namespace forklift::testing {

struct DirectLoad {
  Status status;
  std::unique_ptr<Manifest> manifest;  // stable address: the model keeps a pointer to its schema
  std::unique_ptr<Model> model;
  bool loaded() const { return model != nullptr; }
};

inline DirectLoad load_direct(const std::filesystem::path& dir, const std::string& id = "m",
                              std::int64_t version = 1) {
  register_builtin_runtimes();
  DirectLoad out;
  auto manifest = parse_manifest(dir / "model.yaml");
  if (!manifest.ok()) {
    out.status = manifest.status();
    return out;
  }
  out.manifest = std::make_unique<Manifest>(std::move(manifest).value());
  const RuntimeInfo* runtime = find_runtime(out.manifest->runtime);
  if (runtime == nullptr) {
    out.status = NotFound("no runtime " + out.manifest->runtime);
    return out;
  }
  LoadContext ctx{id,
                  version,
                  dir,
                  dir / out.manifest->artifact,
                  &out.manifest->schema,
                  out.manifest->runtime_options,
                  std::chrono::milliseconds(out.manifest->timeout_ms),
                  out.manifest->engine};
  auto model = runtime->loader(ctx);
  if (!model.ok()) {
    out.status = model.status();
    return out;
  }
  out.model = std::move(model).value();
  return out;
}

}  // namespace forklift::testing
