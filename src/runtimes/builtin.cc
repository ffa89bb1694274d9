#include "runtimes/builtin.h"

#include <string_view>

#include "runtimes/runtime_module.h"

namespace forklift {

void register_xgboost_runtime();
void register_tree_runtime();
void register_constant_runtime();
void register_online_runtime();
#ifdef FORKLIFT_HAS_PYTHON
void register_python_runtime();
int run_python_worker(int argc, char** argv);
#endif

void register_builtin_runtimes() {
  static const bool done = [] {
    register_xgboost_runtime();
    register_tree_runtime();
    register_constant_runtime();
    register_online_runtime();
#ifdef FORKLIFT_HAS_TORCHSCRIPT
    // In a module opened on the first torchscript version (runtimes/runtime_module.h).
    register_runtime(
        RuntimeInfo{"torchscript", "pytorch_torchscript",
                    module_loader("libforklift_torchscript.so", "forklift_torchscript_loader")});
#endif
#ifdef FORKLIFT_HAS_PYTHON
    register_python_runtime();
#endif
    return true;
  }();
  (void)done;
}

int run_runtime_worker(int argc, char** argv) {
#ifdef FORKLIFT_HAS_PYTHON
  if (argc >= 1 && std::string_view(argv[0]) == "python")
    return run_python_worker(argc - 1, argv + 1);
#endif
  (void)argc;
  (void)argv;
  return 2;
}

}  // namespace forklift
