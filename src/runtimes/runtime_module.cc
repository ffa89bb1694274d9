#include "runtimes/runtime_module.h"

#include <dlfcn.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
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
    dirs.push_back(exe.parent_path().parent_path() / FORKLIFT_INSTALL_LIBDIR / "forklift");
    dirs.push_back(exe.parent_path().parent_path());
  }
  if (forklift_module_dir_hint != nullptr) {
    if (const char* hint = forklift_module_dir_hint(); hint != nullptr && *hint != '\0') {
      dirs.emplace_back(hint);
    }
  }
  dirs.emplace_back(FORKLIFT_INSTALL_MODULE_DIR);
  return dirs;
}

// The first line of dlerror()'s message: it names the file and the library that was missing.
std::string dl_error() {
  const char* e = ::dlerror();
  std::string message = e != nullptr ? e : "unknown error";
  return message.substr(0, message.find('\n'));
}

// Opens `file`, checks its `<entry>_abi`, and returns its `symbol`.
Result<void*> open_module(const std::string& file, const std::string& entry,
                          const std::string& symbol) {
  std::string looked;
  for (const fs::path& dir : module_dirs()) {
    const fs::path path = dir / file;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      looked += (looked.empty() ? "" : ", ") + dir.string();
      continue;
    }
    // RTLD_LOCAL: the module's own libraries (libtorch's) are not used to resolve later
    // modules' symbols.
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      return FailedPrecondition("cannot open the runtime module " + path.string() + ": " +
                                dl_error());
    }
    // A handle that fails a check below is left open: dlclose would run the library's
    // destructors, which a module of another build may not survive either.
    const auto abi = reinterpret_cast<ModuleAbiFn>(::dlsym(handle, (entry + "_abi").c_str()));
    if (abi == nullptr || abi() == nullptr || std::strcmp(abi(), FORKLIFT_MODULE_ABI) != 0) {
      return FailedPrecondition("the runtime module " + path.string() +
                                " is from another build of forklift (this one is " +
                                FORKLIFT_MODULE_ABI + "): install the module built with it");
    }
    void* found = ::dlsym(handle, symbol.c_str());
    if (found == nullptr) {
      return FailedPrecondition("the runtime module " + path.string() + " has no " + symbol);
    }
    return found;
  }
  return FailedPrecondition("the runtime module " + file + " is not installed (looked in " +
                            looked + "; set FORKLIFT_MODULE_DIR to its directory)");
}

// Opens `file` and sets `load` from its `entry`.
Status open_module(const std::string& file, const std::string& entry, ModuleLoadFn& load) {
  auto found = open_module(file, entry, entry);
  if (!found.ok()) return found.status();
  load = reinterpret_cast<ModuleEntryFn>(*found)();
  if (load == nullptr) return FailedPrecondition("the runtime module " + file + " has no " + entry);
  return Status::Ok();
}

}  // namespace

Loader module_loader(std::string file, std::string entry, std::chrono::milliseconds retry_after) {
  struct Opened {
    std::mutex mu;
    ModuleLoadFn load = nullptr;  // set once opened, never reset
    Status failure;               // the last attempt's, until the retry time
    std::chrono::steady_clock::time_point retry_at{};
  };
  auto opened = std::make_shared<Opened>();
  return [opened, retry_after, file = std::move(file),
          entry = std::move(entry)](const LoadContext& ctx) -> Result<std::unique_ptr<Model>> {
    ModuleLoadFn load = nullptr;
    {
      std::lock_guard lock(opened->mu);
      if (opened->load == nullptr) {
        const auto now = std::chrono::steady_clock::now();
        if (!opened->failure.ok() && now < opened->retry_at) return opened->failure;
        opened->failure = open_module(file, entry, opened->load);
        opened->retry_at = now + retry_after;
        if (!opened->failure.ok()) return opened->failure;
      }
      load = opened->load;
    }
    return load(ctx);
  };
}

Result<void*> module_symbol(const std::string& file, const std::string& abi_entry,
                            const std::string& symbol) {
  return open_module(file, abi_entry, symbol);
}

}  // namespace forklift
