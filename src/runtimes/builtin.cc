#include "runtimes/runtime_registry.h"

namespace forklift {

void register_xgboost_runtime();

void register_builtin_runtimes() {
  static const bool done = [] {
    register_xgboost_runtime();
    return true;
  }();
  (void)done;
}

}  // namespace forklift
