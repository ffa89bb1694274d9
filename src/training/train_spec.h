// train.yaml: how a model is retrained (docs/reference/train-yaml.md). It sits in the model's
// directory, beside its versions: <repository>/<model id>/train.yaml.
//
//   trainer: xgboost            # or python
//   mode: continue              # scratch | continue | refresh (xgboost)
//   data:
//     source: files             # files | postgres | events
//     files: [data/rides.jsonl] # relative to the model's directory, JSON lines or CSV
//     label: eta_seconds
//   split: {holdout: 0.2, seed: 7}
//   rounds: 50
//   params: {max_depth: 6, eta: 0.1, objective: "reg:squarederror"}
//   evaluation: {metric: rmse, max_regression: 0.02}
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "forklift/status.h"

namespace forklift::training {

enum class TrainMode { kScratch, kContinue, kRefresh };
enum class DataSource { kFiles, kPostgres, kEvents };
enum class SplitKind { kRandom, kLast };

struct DataSpec {
  DataSource source = DataSource::kFiles;
  std::vector<std::string> files;  // kFiles: relative to the model's directory
  std::string label = "label";     // the label's field (JSON), column (CSV, SQL)
  std::string query;               // kPostgres: SELECT returning features + label
  double window_hours = 0;         // kEvents: only labels this recent (0: all)
  std::size_t max_rows = 1'000'000;
  std::uint64_t max_bytes = 1ull << 30;  // of the rows held in memory
};

struct SplitSpec {
  double holdout = 0.2;  // fraction of rows held out for evaluation and self-tests
  std::uint64_t seed = 1;
  SplitKind kind = SplitKind::kRandom;  // kLast: the last rows (data in time order)
};

struct EvaluationSpec {
  std::string metric;           // rmse | mae | logloss | auc | accuracy; "" = by the objective
  double threshold = 0.5;       // accuracy's
  double max_regression = 0.0;  // how much worse than the parent (relative) is still accepted
  std::size_t min_holdout_rows = 20;
};

// When the server queues a job by itself (training/job_scheduler.h); all off by default.
struct ScheduleSpec {
  double every_hours = 0;               // when the newest version is this old (0: off)
  std::uint64_t after_labels = 0;       // when this many labels arrived since the last job (0: off)
  double on_drift_psi = 0;              // when a serving feature drifts this far (PSI; 0: off)
  std::uint64_t drift_min_rows = 1000;  // rows in the drift window before it counts
  double min_hours_between = 1;         // label and drift triggers fire at most this often

  bool any() const { return every_hours > 0 || after_labels > 0 || on_drift_psi > 0; }
};

struct PythonSpec {
  std::string module = "train.py";  // relative to the model's directory
  std::string function = "train";
  std::string executable = "/usr/bin/python3";  // an absolute path
  int timeout_minutes = 60;                     // then the job fails
};

struct TrainSpec {
  std::string trainer;  // "xgboost" | "python"
  TrainMode mode = TrainMode::kScratch;
  DataSpec data;
  SplitSpec split;
  int rounds = 100;
  std::map<std::string, std::string> params;
  EvaluationSpec evaluation;
  PythonSpec python;
  ScheduleSpec schedule;
  std::size_t selftests = 20;  // held-out rows written to the new version's selftest.jsonl
  std::size_t profile_bins = 10;
  // model.yaml for a model with no version yet (relative to the model's directory); otherwise
  // the new version's model.yaml is its parent's.
  std::string manifest;
};

inline constexpr std::uintmax_t kMaxTrainSpecBytes = 1 << 20;

// Parses train.yaml text; `origin` names it in errors, which name the field at fault.
Result<TrainSpec> parse_train_spec(const std::string& yaml, const std::string& origin);
// Reads <model dir>/train.yaml (a regular file inside `repository`).
Result<TrainSpec> read_train_spec(const std::filesystem::path& repository,
                                  const std::filesystem::path& model_dir);

// The metric a spec is judged by, when it names none: from the objective in params.
std::string default_metric(const TrainSpec& spec);
// Whether a larger value of `metric` is better (auc, accuracy).
bool higher_is_better(const std::string& metric);

std::string_view to_string(TrainMode mode);
std::string_view to_string(DataSource source);

}  // namespace forklift::training
