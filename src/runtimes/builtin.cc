#include "runtimes/runtime_registry.h"

namespace forklift {

void register_xgboost_runtime();
#ifdef FORKLIFT_HAS_TORCHSCRIPT
void register_torchscript_runtime();
#endif
#ifdef FORKLIFT_HAS_PYTHON
void register_python_runtime();
#endif

void register_builtin_runtimes() {
  static const bool done = [] {
    register_xgboost_runtime();
#ifdef FORKLIFT_HAS_TORCHSCRIPT
    register_torchscript_runtime();
#endif
#ifdef FORKLIFT_HAS_PYTHON
    register_python_runtime();
#endif
    return true;
  }();
  (void)done;
}

}  // namespace forklift
