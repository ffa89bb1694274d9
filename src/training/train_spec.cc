#include "training/train_spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <set>

#include "common/file_util.h"
#include "common/shown_key.h"

namespace forklift::training {
namespace {

// Thrown inside this file only, turned into a Status before returning.
struct SpecError {
  std::string field;
  std::string message;
};

[[noreturn]] void fail(std::string field, std::string message) {
  throw SpecError{std::move(field), std::move(message)};
}

void only_keys(const YAML::Node& map, const std::string& at, const std::set<std::string>& known) {
  if (!map.IsMap()) fail(at.empty() ? "(top level)" : at, "must be a map");
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    if (!known.count(key)) {
      std::string names;
      for (const auto& k : known) names += (names.empty() ? "" : ", ") + k;
      fail(at + (at.empty() ? "" : ".") + shown_key(key), "is not a known field (" + names + ")");
    }
  }
}

std::string scalar(const YAML::Node& v, const std::string& field) {
  if (!v.IsScalar()) fail(field, "must be a scalar");
  return v.as<std::string>();
}

std::string one_of(const YAML::Node& v, const std::string& field,
                   const std::vector<std::string>& allowed) {
  const std::string s = scalar(v, field);
  if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
    std::string names;
    for (const auto& a : allowed) names += (names.empty() ? "" : ", ") + a;
    fail(field, "must be one of " + names);
  }
  return s;
}

// 0.01 as 0.01, not 0.010000.
std::string plain(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

double number(const YAML::Node& v, const std::string& field, double lo, double hi) {
  double d = std::nan("");
  try {
    if (v.IsScalar()) d = v.as<double>();
  } catch (const YAML::Exception&) {
  }
  if (!(d >= lo && d <= hi)) {
    fail(field, "must be a number from " + plain(lo) + " to " + plain(hi));
  }
  return d;
}

long long integer(const YAML::Node& v, const std::string& field, long long lo, long long hi) {
  long long n = lo - 1;
  try {
    if (v.IsScalar()) n = v.as<long long>();
  } catch (const YAML::Exception&) {
  }
  if (n < lo || n > hi) {
    fail(field, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return n;
}

// A path the spec names inside the model's directory: relative, without "..". Where it really
// leads is checked again when the file is opened (real path, not text).
std::string relative_path(const YAML::Node& v, const std::string& field) {
  const std::string s = scalar(v, field);
  const std::filesystem::path p(s);
  if (s.empty() || s.size() > 4096 || p.is_absolute()) {
    fail(field, "must be a path relative to the model's directory");
  }
  for (const auto& part : p) {
    if (part == "..") fail(field, "must not leave the model's directory (..)");
  }
  return s;
}

DataSpec parse_data(const YAML::Node& d) {
  only_keys(d, "data", {"source", "files", "label", "query", "window_hours", "max_rows", "max_mb"});
  DataSpec out;
  const std::string source =
      d["source"] ? one_of(d["source"], "data.source", {"files", "postgres", "events"}) : "files";
  out.source = source == "files"      ? DataSource::kFiles
               : source == "postgres" ? DataSource::kPostgres
                                      : DataSource::kEvents;
  if (const YAML::Node f = d["files"]) {
    if (f.IsScalar()) {
      out.files.push_back(relative_path(f, "data.files"));
    } else if (f.IsSequence() && f.size() <= 1000) {
      for (std::size_t i = 0; i < f.size(); ++i) {
        out.files.push_back(relative_path(f[i], "data.files[" + std::to_string(i) + "]"));
      }
    } else {
      fail("data.files", "must be a path or a list of at most 1000 paths");
    }
  }
  if (const YAML::Node l = d["label"]) out.label = scalar(l, "data.label");
  if (out.label.empty() || out.label.size() > 128) {
    fail("data.label", "must be a name of 1 to 128 characters");
  }
  if (const YAML::Node q = d["query"]) out.query = scalar(q, "data.query");
  if (const YAML::Node w = d["window_hours"]) {
    out.window_hours = number(w, "data.window_hours", 0, 24.0 * 3660);
  }
  if (const YAML::Node m = d["max_rows"]) {
    out.max_rows = static_cast<std::size_t>(integer(m, "data.max_rows", 1, 100'000'000));
  }
  if (const YAML::Node m = d["max_mb"]) {
    out.max_bytes = static_cast<std::uint64_t>(integer(m, "data.max_mb", 1, 1 << 20)) << 20;
  }
  if (out.source == DataSource::kFiles && out.files.empty()) {
    fail("data.files", "is required when data.source is files");
  }
  if (out.source == DataSource::kPostgres && out.query.empty()) {
    fail("data.query", "is required when data.source is postgres");
  }
  if (out.source != DataSource::kFiles && !out.files.empty()) {
    fail("data.files", "is only read when data.source is files");
  }
  return out;
}

SplitSpec parse_split(const YAML::Node& s) {
  only_keys(s, "split", {"holdout", "seed", "by"});
  SplitSpec out;
  if (const YAML::Node h = s["holdout"]) out.holdout = number(h, "split.holdout", 0.01, 0.9);
  if (const YAML::Node v = s["seed"]) {
    out.seed = static_cast<std::uint64_t>(integer(v, "split.seed", 0, 1ll << 62));
  }
  if (const YAML::Node b = s["by"]) {
    out.kind =
        one_of(b, "split.by", {"random", "last"}) == "last" ? SplitKind::kLast : SplitKind::kRandom;
  }
  return out;
}

EvaluationSpec parse_evaluation(const YAML::Node& e) {
  only_keys(e, "evaluation", {"metric", "threshold", "max_regression", "min_holdout_rows"});
  EvaluationSpec out;
  if (const YAML::Node m = e["metric"]) {
    out.metric = one_of(m, "evaluation.metric", {"rmse", "mae", "logloss", "auc", "accuracy"});
  }
  if (const YAML::Node t = e["threshold"]) out.threshold = number(t, "evaluation.threshold", 0, 1);
  if (const YAML::Node r = e["max_regression"]) {
    out.max_regression = number(r, "evaluation.max_regression", 0, 10);
  }
  if (const YAML::Node n = e["min_holdout_rows"]) {
    out.min_holdout_rows =
        static_cast<std::size_t>(integer(n, "evaluation.min_holdout_rows", 1, 10'000'000));
  }
  return out;
}

ScheduleSpec parse_schedule(const YAML::Node& s) {
  only_keys(s, "schedule",
            {"every_hours", "after_labels", "on_drift_psi", "drift_min_rows", "min_hours_between"});
  ScheduleSpec out;
  // At least a second: a schedule is not a loop.
  constexpr double kSecond = 1.0 / 3600;
  if (const YAML::Node v = s["every_hours"]) {
    out.every_hours = number(v, "schedule.every_hours", kSecond, 24.0 * 366);
  }
  if (const YAML::Node v = s["after_labels"]) {
    out.after_labels =
        static_cast<std::uint64_t>(integer(v, "schedule.after_labels", 1, 1'000'000'000'000));
  }
  if (const YAML::Node v = s["on_drift_psi"]) {
    out.on_drift_psi = number(v, "schedule.on_drift_psi", 0.001, 100);
  }
  if (const YAML::Node v = s["drift_min_rows"]) {
    out.drift_min_rows =
        static_cast<std::uint64_t>(integer(v, "schedule.drift_min_rows", 1, 1'000'000'000));
  }
  if (const YAML::Node v = s["min_hours_between"]) {
    out.min_hours_between = number(v, "schedule.min_hours_between", kSecond, 24.0 * 366);
  }
  return out;
}

TrainSpec parse_root(const YAML::Node& root) {
  only_keys(root, "",
            {"trainer", "mode", "data", "split", "rounds", "params", "evaluation", "python",
             "schedule", "selftests", "profile_bins", "manifest"});
  TrainSpec spec;
  if (!root["trainer"]) fail("trainer", "is required (xgboost or python)");
  spec.trainer = one_of(root["trainer"], "trainer", {"xgboost", "python"});
  if (const YAML::Node m = root["mode"]) {
    const std::string mode = one_of(m, "mode", {"scratch", "continue", "refresh"});
    spec.mode = mode == "scratch"    ? TrainMode::kScratch
                : mode == "continue" ? TrainMode::kContinue
                                     : TrainMode::kRefresh;
  }
  if (spec.trainer == "python" && spec.mode != TrainMode::kScratch) {
    fail("mode", "continue and refresh are for the xgboost trainer");
  }
  if (!root["data"]) fail("data", "is required");
  spec.data = parse_data(root["data"]);
  if (const YAML::Node s = root["split"]) spec.split = parse_split(s);
  if (const YAML::Node r = root["rounds"]) {
    spec.rounds = static_cast<int>(integer(r, "rounds", 1, 100'000));
  }
  if (const YAML::Node p = root["params"]) {
    if (!p.IsMap() || p.size() > 200) fail("params", "must be a map of at most 200 names");
    for (const auto& kv : p) {
      const std::string key = kv.first.as<std::string>();
      if (!is_plain_key(key)) fail("params." + shown_key(key), "is not a parameter name");
      spec.params[key] = scalar(kv.second, "params." + key);
    }
  }
  if (const YAML::Node e = root["evaluation"]) spec.evaluation = parse_evaluation(e);
  if (const YAML::Node py = root["python"]) {
    only_keys(py, "python", {"module", "function", "executable", "timeout_minutes"});
    if (py["module"]) spec.python.module = relative_path(py["module"], "python.module");
    if (py["function"]) spec.python.function = scalar(py["function"], "python.function");
    if (spec.python.function.empty() || !is_plain_key(spec.python.function)) {
      fail("python.function", "must be a Python name");
    }
    if (py["executable"]) {
      spec.python.executable = scalar(py["executable"], "python.executable");
      if (!std::filesystem::path(spec.python.executable).is_absolute()) {
        fail("python.executable", "must be an absolute path");
      }
    }
    if (py["timeout_minutes"]) {
      spec.python.timeout_minutes =
          static_cast<int>(integer(py["timeout_minutes"], "python.timeout_minutes", 1, 10080));
    }
  }
  if (const YAML::Node s = root["schedule"]) spec.schedule = parse_schedule(s);
  if (const YAML::Node n = root["selftests"]) {
    spec.selftests = static_cast<std::size_t>(integer(n, "selftests", 1, 10'000));
  }
  if (const YAML::Node b = root["profile_bins"]) {
    spec.profile_bins = static_cast<std::size_t>(integer(b, "profile_bins", 2, 100));
  }
  if (const YAML::Node m = root["manifest"]) spec.manifest = relative_path(m, "manifest");
  return spec;
}

}  // namespace

Result<TrainSpec> parse_train_spec(const std::string& yaml, const std::string& origin) {
  try {
    return parse_root(YAML::Load(yaml));
  } catch (const SpecError& e) {
    return InvalidArgument(origin + ": field '" + e.field + "' " + e.message);
  } catch (const YAML::Exception& e) {
    // The mark, not the message: yaml-cpp's messages can quote the file.
    return InvalidArgument(origin + ": not valid YAML (line " + std::to_string(e.mark.line + 1) +
                           ")");
  }
}

Result<TrainSpec> read_train_spec(const std::filesystem::path& repository,
                                  const std::filesystem::path& model_dir) {
  const std::filesystem::path file = model_dir / "train.yaml";
  std::error_code ec;
  if (std::filesystem::symlink_status(file, ec).type() == std::filesystem::file_type::not_found) {
    return NotFound(file.string() +
                    " does not exist: write one to say how the model is trained "
                    "(docs/reference/train-yaml.md)");
  }
  auto opened = open_regular_within(repository, file, kMaxTrainSpecBytes);
  if (!opened.ok()) return opened.status();
  const std::string text = read_up_to(opened->fd.get(), static_cast<std::size_t>(opened->size));
  return parse_train_spec(text, file.string());
}

std::string default_metric(const TrainSpec& spec) {
  if (!spec.evaluation.metric.empty()) return spec.evaluation.metric;
  auto it = spec.params.find("objective");
  if (it != spec.params.end() && it->second.rfind("binary:", 0) == 0) return "logloss";
  return "rmse";
}

bool higher_is_better(const std::string& metric) {
  return metric == "auc" || metric == "accuracy";
}

std::string_view to_string(TrainMode mode) {
  switch (mode) {
    case TrainMode::kScratch:
      return "scratch";
    case TrainMode::kContinue:
      return "continue";
    case TrainMode::kRefresh:
      return "refresh";
  }
  return "scratch";
}

std::string_view to_string(DataSource source) {
  switch (source) {
    case DataSource::kFiles:
      return "files";
    case DataSource::kPostgres:
      return "postgres";
    case DataSource::kEvents:
      return "events";
  }
  return "files";
}

}  // namespace forklift::training
