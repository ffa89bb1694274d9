#include "training/trainer.h"

namespace forklift::training {

std::unique_ptr<Trainer> make_xgboost_trainer();  // xgboost_trainer.cc
std::unique_ptr<Trainer> make_python_trainer();   // python_trainer.cc

std::unique_ptr<Trainer> make_trainer(const std::string& name) {
  if (name == "xgboost") return make_xgboost_trainer();
  if (name == "python") return make_python_trainer();
  return nullptr;
}

}  // namespace forklift::training
