// Runtimes kept out of forklift's start-up and out of images that do not need them: the
// torchscript runtime (libforklift_torchscript.so) and the python runtime's interpreter
// (libforklift_python.so) live in modules that forklift opens the first time a version needs
// one. Linked in, libtorch cost every process 0.7 s of CPU at start, whatever it served
// (docs/explanation/dependencies.md), and libpython put Python in every image.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "forklift/runtime.h"

namespace forklift {

// What a runtime module exports (extern "C"): `<entry>` returns its load function, and
// `<entry>_abi` the FORKLIFT_MODULE_ABI string it was built with. The module is compiled in
// forklift's own build, with the same compiler and flags, so C++ types may cross; a module from
// another build (an upgrade installed under a running server) is refused by that string.
using ModuleLoadFn = Result<std::unique_ptr<Model>> (*)(const LoadContext&);
using ModuleEntryFn = ModuleLoadFn (*)();
using ModuleAbiFn = const char* (*)();

// A Loader that opens `file` on first use and forwards to the load function `entry` returns.
// Once open, the module stays open (the models it makes point into it). A failed open is not
// kept for good: the next load at least 10 s later tries again (a module installed after start,
// or a passing shortage of memory or descriptors). Where it looks: $FORKLIFT_MODULE_DIR when
// set; else beside the executable, in <executable>/../lib/forklift, in <executable>/.. (test
// binaries in the build tree), in the directory a team binary was given at link time
// (forklift_module_dir_hint, from the SDK's CMake package), and in the install directory.
// Not found, refused or not opening: that load gets FailedPrecondition saying why.
Loader module_loader(std::string file, std::string entry,
                     std::chrono::milliseconds retry_after = std::chrono::seconds(10));

// Another symbol of the module `file` (opened, and its `<entry>_abi` checked, as above; a module
// stays open). For a process that needs more of a module than its load function.
Result<void*> module_symbol(const std::string& file, const std::string& abi_entry,
                            const std::string& symbol);

}  // namespace forklift

// Defined by a team binary built against the installed SDK (forkliftConfig.cmake compiles it in)
// with the directory its modules were installed to; absent elsewhere (a weak reference).
extern "C" const char* forklift_module_dir_hint() __attribute__((weak));
