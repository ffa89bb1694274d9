// The `xgboost` trainer: boosting rounds through the XGBoost C API, one round at a time, so that
// a job reports progress and can be cancelled between rounds.
//
// Modes: scratch (a new booster), continue (the parent's trees, then `rounds` more) and refresh
// (the parent's trees kept, their leaf values and statistics recomputed on the new data: XGBoost's
// process_type=update with the refresh updater, one pass per existing round).
#include <xgboost/c_api.h>

#include <cstdlib>
#include <memory>
#include <sstream>
#include <thread>

#include "training/trainer.h"

namespace forklift::training {
namespace {

struct BoosterDeleter {
  void operator()(void* h) const { XGBoosterFree(h); }
};
struct DMatrixDeleter {
  void operator()(void* h) const { XGDMatrixFree(h); }
};
using BoosterPtr = std::unique_ptr<void, BoosterDeleter>;
using DMatrixPtr = std::unique_ptr<void, DMatrixDeleter>;

std::string last_error() {
  std::string message = XGBGetLastError();
  if (auto cut = message.find("\nStack trace"); cut != std::string::npos) message.resize(cut);
  return message;
}

Status xgb_failed(const std::string& what) {
  return FailedPrecondition("xgboost: " + what + ": " + last_error());
}

// Rows `indices` of `data` as an XGBoost matrix with their labels. Values are rounded to float
// exactly as the serving runtime rounds them (runtimes/dense_rows.h).
Result<DMatrixPtr> matrix(const Dataset& data, const std::vector<std::size_t>& indices) {
  const std::size_t cols = data.dense_columns();
  std::vector<float> cells;
  cells.reserve(indices.size() * cols);
  std::vector<float> labels;
  labels.reserve(indices.size());
  for (std::size_t r : indices) {
    const double* row = data.dense_row(r);
    for (std::size_t c = 0; c < cols; ++c) cells.push_back(static_cast<float>(row[c]));
    labels.push_back(static_cast<float>(data.label(r)));
  }
  DMatrixHandle h = nullptr;
  if (XGDMatrixCreateFromMat(cells.data(), indices.size(), cols, std::nanf(""), &h) != 0) {
    return xgb_failed("cannot build the data matrix");
  }
  DMatrixPtr m(h);
  if (XGDMatrixSetFloatInfo(h, "label", labels.data(), labels.size()) != 0) {
    return xgb_failed("cannot set the labels");
  }
  return m;
}

// XGBoost's name for a metric of train.yaml's.
std::string xgboost_metric(const std::string& metric) {
  return metric == "accuracy" ? "error" : metric;
}

// "[3]\ttrain-rmse:1.5\tholdout-rmse:2.25" -> the value after "<which>-<metric>:".
double eval_value(const std::string& line, const std::string& which) {
  const std::string key = "\t" + which + "-";
  const auto at = line.find(key);
  if (at == std::string::npos) return std::nan("");
  const auto colon = line.find(':', at);
  if (colon == std::string::npos) return std::nan("");
  return std::strtod(line.c_str() + colon + 1, nullptr);
}

class XgboostTrainer final : public Trainer {
 public:
  Result<TrainOutput> train(const TrainInput& in) const override {
    const TrainSpec& spec = *in.spec;
    const Dataset& data = *in.data;
    if (data.has_strings()) {
      return InvalidArgument(
          "the xgboost trainer cannot take string features; encode them as numbers");
    }
    auto train = matrix(data, in.split->train);
    if (!train.ok()) return train.status();
    auto holdout = matrix(data, in.split->holdout);
    if (!holdout.ok()) return holdout.status();
    DMatrixHandle both[2] = {train->get(), holdout->get()};
    const char* names[2] = {"train", "holdout"};

    BoosterHandle raw = nullptr;
    if (XGBoosterCreate(both, 2, &raw) != 0) return xgb_failed("cannot create a booster");
    BoosterPtr booster(raw);
    int first_round = 0;
    if (spec.mode != TrainMode::kScratch) {
      if (in.parent_artifact.empty()) {
        return FailedPrecondition(std::string("mode ") + std::string(to_string(spec.mode)) +
                                  " needs a parent version to start from; there is none");
      }
      if (XGBoosterLoadModel(raw, in.parent_artifact.c_str()) != 0) {
        return xgb_failed("cannot load the parent version's model");
      }
      bst_ulong features = 0;
      if (XGBoosterGetNumFeature(raw, &features) != 0 || features != data.dense_columns()) {
        return FailedPrecondition("the parent version's model takes " + std::to_string(features) +
                                  " columns, the schema makes " +
                                  std::to_string(data.dense_columns()));
      }
      if (XGBoosterBoostedRounds(raw, &first_round) != 0) {
        return xgb_failed("cannot read the parent's rounds");
      }
    }

    TrainOutput out;
    out.params = spec.params;
    // Training is background work beside serving: one thread unless the spec asks for more.
    out.params.emplace("nthread", "1");
    out.params.emplace("seed", std::to_string(spec.split.seed % 2147483647));
    // The per-round figure is XGBoost's own, under its own name: for accuracy that is `error`
    // (1 - accuracy), which the progress and lineage.json then call error.
    out.params.emplace("eval_metric", xgboost_metric(default_metric(spec)));
    out.history_metric = out.params.at("eval_metric");
    int rounds = spec.rounds;
    if (spec.mode == TrainMode::kRefresh) {
      out.params["process_type"] = "update";
      out.params["updater"] = "refresh";
      out.params.emplace("refresh_leaf", "1");
      rounds = first_round;
      first_round = 0;
    }
    for (const auto& [key, value] : out.params) {
      if (XGBoosterSetParam(raw, key.c_str(), value.c_str()) != 0) {
        return xgb_failed("parameter '" + key + "'");
      }
    }

    for (int i = 0; i < rounds; ++i) {
      if (in.cancelled()) return Unavailable("cancelled");
      if (XGBoosterUpdateOneIter(raw, first_round + i, train->get()) != 0) {
        return xgb_failed("round " + std::to_string(i + 1));
      }
      const char* evaluation = nullptr;
      if (XGBoosterEvalOneIter(raw, first_round + i, both, names, 2, &evaluation) != 0) {
        return xgb_failed("evaluating round " + std::to_string(i + 1));
      }
      const std::string line = evaluation ? evaluation : "";
      Progress p;
      p.stage = "training";
      p.done = static_cast<std::size_t>(i + 1);
      p.total = static_cast<std::size_t>(rounds);
      p.metric = out.history_metric;
      p.train_value = eval_value(line, "train");
      p.holdout_value = eval_value(line, "holdout");
      out.history.push_back(p.holdout_value);
      if (in.progress) in.progress(p);
    }
    if (XGBoosterBoostedRounds(raw, &out.rounds) != 0) out.rounds = first_round + rounds;
    if (XGBoosterSaveModel(raw, in.output.c_str()) != 0) {
      return xgb_failed("cannot write the model");
    }
    return out;
  }
};

}  // namespace

std::unique_ptr<Trainer> make_xgboost_trainer() {
  return std::make_unique<XgboostTrainer>();
}

}  // namespace forklift::training
