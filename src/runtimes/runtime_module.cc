#include "runtimes/runtime_module.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <vector>

namespace forklift {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> module_dirs() {
  if (const char* dir = std::getenv("FORKLIFT_MODULE_DIR"); dir != nullptr && *dir != '\0') {
    return {dir};
  }
  std::vector<fs::path> dirs;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back(exe.parent_path());
    dirs.push_back(exe.parent_path().parent_path() / "lib" / "forklift");
  }
#ifdef FORKLIFT_BUILD_MODULE_DIR
  dirs.emplace_back(FORKLIFT_BUILD_MODULE_DIR);  // tests and benchmarks in the build tree
#endif
#ifdef FORKLIFT_INSTALL_MODULE_DIR
  dirs.emplace_back(FORKLIFT_INSTALL_MODULE_DIR);  // team binaries built against an install
#endif
  return dirs;
}

// The first line of dlerror()'s message: it names the file and the library that was missing.
std::string dl_error() {
  const char* e = ::dlerror();
  std::string message = e != nullptr ? e : "unknown error";
  return message.substr(0, message.find('\n'));
}

// Opens `file` and sets `load` from its `entry`.
Status open_module(const std::string& file, const std::string& entry, ModuleLoadFn& load) {
  std::string looked;
  for (const fs::path& dir : module_dirs()) {
    const fs::path path = dir / file;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      looked += (looked.empty() ? "" : ", ") + dir.string();
      continue;
    }
    // RTLD_LOCAL: the module's libraries do not leak their symbols into forklift's.
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      return FailedPrecondition("cannot open the runtime module " + path.string() + ": " +
                                dl_error());
    }
    void* symbol = ::dlsym(handle, entry.c_str());
    if (symbol == nullptr) {
      return FailedPrecondition("the runtime module " + path.string() + " has no " + entry);
    }
    load = reinterpret_cast<ModuleEntryFn>(symbol)();
    if (load == nullptr) {
      return FailedPrecondition("the runtime module " + path.string() + " gave no load function");
    }
    return Status::Ok();
  }
  return FailedPrecondition("the runtime module " + file + " is not installed (looked in " +
                            looked + "; set FORKLIFT_MODULE_DIR to its directory)");
}

}  // namespace

Loader module_loader(std::string file, std::string entry) {
  struct Opened {
    std::once_flag once;
    Status status;
    ModuleLoadFn load = nullptr;
  };
  auto opened = std::make_shared<Opened>();
  return [opened, file = std::move(file),
          entry = std::move(entry)](const LoadContext& ctx) -> Result<std::unique_ptr<Model>> {
    std::call_once(opened->once, [&] { opened->status = open_module(file, entry, opened->load); });
    if (!opened->status.ok()) return opened->status;
    return opened->load(ctx);
  };
}

}  // namespace forklift
