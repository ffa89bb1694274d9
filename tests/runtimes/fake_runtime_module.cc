// A runtime module for runtime_module_test.cc, built twice: with forklift's FORKLIFT_MODULE_ABI
// and with another (FAKE_MODULE_ABI says which).
#include "runtimes/runtime_module.h"

namespace {

forklift::Result<std::unique_ptr<forklift::Model>> load(const forklift::LoadContext& ctx) {
  return forklift::InvalidArgument("the fake module was asked for " + ctx.model_id);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) forklift::ModuleLoadFn fake_entry() {
  return &load;
}

extern "C" __attribute__((visibility("default"))) const char* fake_entry_abi() {
  return FAKE_MODULE_ABI;
}
