// Runtimes kept out of forklift's start-up: the torchscript runtime lives in a module
// (libforklift_torchscript.so) that forklift opens the first time a version asks for it. Linked
// in, libtorch and the 280 shared libraries behind it cost every process 0.7 s of CPU at start
// (relocations and libtorch's static initialisers, measured), whether it serves a TorchScript
// model or runs `forklift deploy`; a server that never loads one now never pays it.
#pragma once

#include <memory>
#include <string>

#include "forklift/runtime.h"

namespace forklift {

// What a runtime module exports, under the name its registration gives (extern "C"): a function
// returning its load function. The module is compiled in forklift's own build, with the same
// compiler and flags, so the C++ types may cross.
using ModuleLoadFn = Result<std::unique_ptr<Model>> (*)(const LoadContext&);
using ModuleEntryFn = ModuleLoadFn (*)();

// A Loader that opens `file` on its first call (once per process; never closed, since the
// models it makes point into it) and forwards to the load function `entry` returns. The file
// is looked for in $FORKLIFT_MODULE_DIR when set, else beside the executable, in
// <executable>/../lib/forklift, in the build directory and in the install directory. Not found,
// or not opening: every load gets FailedPrecondition saying where it looked and why.
Loader module_loader(std::string file, std::string entry);

}  // namespace forklift
