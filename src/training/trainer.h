// A trainer turns a dataset into an artifact file: the `trainer:` of train.yaml. Built in:
// xgboost (the XGBoost C API, xgboost_trainer.cc) and python (the team's train() in a child
// process, python_trainer.cc).
#pragma once

#include <atomic>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "forklift/status.h"
#include "training/dataset.h"
#include "training/train_spec.h"

namespace forklift::training {

// Where a job is, for a progress bar and the job's record.
struct Progress {
  std::string stage;     // "reading data", "training", "evaluating", "writing", ...
  std::size_t done = 0;  // of `total` steps of the stage (training: rounds); 0/0 = unknown
  std::size_t total = 0;
  std::string metric;  // the trainer's evaluation metric, when it reports one
  double train_value = std::nan("");
  double holdout_value = std::nan("");
};
using ProgressFn = std::function<void(const Progress&)>;
using LogFn = std::function<void(const std::string&)>;

struct TrainInput {
  const TrainSpec* spec = nullptr;
  const Dataset* data = nullptr;
  const Split* split = nullptr;
  std::filesystem::path model_dir;        // <repository>/<model id>: train.py and data live here
  std::filesystem::path parent_artifact;  // the parent version's, for continue/refresh
  std::filesystem::path output;           // the artifact to write
  ProgressFn progress;
  LogFn log;
  const std::atomic<bool>* cancel = nullptr;  // set: stop at the next round, return an error

  bool cancelled() const { return cancel && cancel->load(std::memory_order_relaxed); }
};

struct TrainOutput {
  int rounds = 0;  // boosting rounds in the artifact (xgboost), 0 when not meaningful
  // The trainer's own metric per round on the held-out rows, e.g. {"rmse", [...]}.
  std::string history_metric;
  std::vector<double> history;
  std::map<std::string, std::string> params;  // what it trained with, defaults included
};

class Trainer {
 public:
  virtual ~Trainer() = default;
  virtual Result<TrainOutput> train(const TrainInput& input) const = 0;
};

// The built-in trainer called `name`, or nullptr.
std::unique_ptr<Trainer> make_trainer(const std::string& name);

}  // namespace forklift::training
