#include "training/training_job.h"

#include <cmath>
#include <cstdio>

#include "common/file_util.h"
#include "common/json_writer.h"
#include "core/control_state.h"
#include "core/drift/feature_profile.h"
#include "core/manifest.h"
#include "core/repository.h"
#include "core/version_loader.h"
#include "training/eval_metrics.h"
#include "training/postgres_rows.h"
#include "training/staged_version.h"

namespace forklift::training {
namespace {

constexpr std::size_t kPredictChunkRows = 1000;
constexpr std::uint64_t kMaxSupportingBytes = 256ull << 20;

// A job's failure at one step, as a value: every step returns one or goes on.
struct Stop {
  JobResult result;
  std::string reason;
};

std::string fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// The model's outputs for rows `indices`, as numbers; chunks keep the batches small.
Result<std::vector<double>> predict_rows(const Model& model, const Dataset& data,
                                         const std::vector<std::size_t>& indices,
                                         std::vector<Value>* values = nullptr) {
  std::vector<double> out;
  out.reserve(indices.size());
  for (std::size_t start = 0; start < indices.size(); start += kPredictChunkRows) {
    const std::vector<std::size_t> chunk(
        indices.begin() + static_cast<std::ptrdiff_t>(start),
        indices.begin() +
            static_cast<std::ptrdiff_t>(std::min(indices.size(), start + kPredictChunkRows)));
    const Batch batch = data.batch(chunk);
    std::vector<Value> outputs;
    if (Status s = model.predict(batch, outputs); !s.ok()) return s;
    if (outputs.size() != chunk.size()) return Internal("the model gave a wrong number of outputs");
    for (Value& v : outputs) {
      if (const auto* d = std::get_if<double>(&v)) {
        out.push_back(*d);
      } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
        out.push_back(static_cast<double>(*i));
      } else if (const auto* b = std::get_if<bool>(&v)) {
        out.push_back(*b ? 1 : 0);
      } else {
        return InvalidArgument("evaluation needs a number output; this model's output is not one");
      }
      if (values) values->push_back(std::move(v));
    }
  }
  return out;
}

// selftest.jsonl: the first `count` held-out rows with the new model's own outputs.
std::string selftest_lines(const Dataset& data, const std::vector<std::size_t>& rows,
                           const std::vector<Value>& outputs, std::size_t count) {
  std::string out;
  const std::size_t n = std::min({count, rows.size(), outputs.size()});
  const std::vector<std::size_t> chosen(rows.begin(),
                                        rows.begin() + static_cast<std::ptrdiff_t>(n));
  const Batch batch = data.batch(chosen);
  for (std::size_t r = 0; r < n; ++r) {
    out += "{\"name\":\"held-out row ";
    out += std::to_string(chosen[r]);
    out += "\",\"features\":{";
    const RowView row = batch.row(r);
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i) out.push_back(',');
      json::append_string(out, data.schema().features[i].name);
      out.push_back(':');
      json::append_value(out, row[i]);
    }
    out += "},\"expected\":";
    json::append_value(out, outputs[r]);
    out += "}\n";
  }
  return out;
}

class Job {
 public:
  Job(const JobRequest& request, const ProgressFn& progress, const LogFn& log,
      const std::atomic<bool>* cancel)
      : req_(request), progress_(progress), log_(log), cancel_(cancel) {
    model_dir_ = req_.repository / req_.model_id;
  }

  JobOutcome run() {
    started_ = now_iso8601();
    std::optional<Stop> stop = prepare();
    if (!stop) stop = read_data();
    if (!stop) stop = split();
    if (!stop) stop = train();
    if (!stop) stop = evaluate();
    if (!stop) stop = write_version();
    if (stop) {
      outcome_.result = stop->result;
      outcome_.reason = stop->reason;
      say(std::string(to_string(stop->result)) + ": " + stop->reason);
    }
    return std::move(outcome_);
  }

 private:
  void say(const std::string& line) const {
    if (log_) log_(line);
  }
  void stage(const std::string& name, std::size_t done = 0, std::size_t total = 0) const {
    Progress p;
    p.stage = name;
    p.done = done;
    p.total = total;
    if (progress_) progress_(p);
  }
  bool cancelled() const { return cancel_ && cancel_->load(std::memory_order_relaxed); }
  static Stop failed(const Status& s) { return {JobResult::kFailed, s.message()}; }
  std::optional<Stop> check_cancel() const {
    if (cancelled()) return Stop{JobResult::kCancelled, "cancelled"};
    return std::nullopt;
  }

  // The spec, the parent version and the manifest the new version will carry.
  std::optional<Stop> prepare() {
    stage("preparing");
    // The model's directory must really be inside the repository (a link out of it is not), as
    // the repository scan requires: everything the job reads and writes is then within it.
    if (!is_valid_model_id(req_.model_id)) {
      return Stop{JobResult::kFailed, "'" + req_.model_id.substr(0, 128) + "' is not a model id"};
    }
    auto real = real_path_within(req_.repository, model_dir_);
    std::error_code ec;
    if (!real.ok() || !std::filesystem::is_directory(*real, ec) ||
        std::filesystem::is_symlink(model_dir_, ec)) {
      return Stop{JobResult::kFailed, "model '" + req_.model_id +
                                          "' is not a directory of the model repository (a link "
                                          "is not followed)"};
    }
    auto spec = read_train_spec(req_.repository, model_dir_);
    if (!spec.ok()) return failed(spec.status());
    spec_ = std::move(spec).value();
    trainer_ = make_trainer(spec_.trainer);
    if (!trainer_)
      return Stop{JobResult::kFailed, "trainer '" + spec_.trainer + "' is not built in"};
    if (std::size_t removed = remove_abandoned_staging(model_dir_); removed > 0) {
      say("removed " + std::to_string(removed) + " staging directory(ies) of jobs that died");
    }
    parent_ = req_.parent > 0 ? req_.parent : newest_version(model_dir_);
    outcome_.parent = parent_;
    std::string manifest_text;
    if (parent_ > 0) {
      parent_dir_ = model_dir_ / std::to_string(parent_);
      auto opened =
          open_regular_within(req_.repository, parent_dir_ / "model.yaml", kMaxManifestBytes);
      if (!opened.ok()) return failed(opened.status());
      manifest_text = read_up_to(opened->fd.get(), static_cast<std::size_t>(opened->size));
    } else if (!spec_.manifest.empty()) {
      // Within the model's own directory: a link to another model's files is not followed.
      auto opened = open_regular_within(model_dir_, model_dir_ / spec_.manifest, kMaxManifestBytes);
      if (!opened.ok()) return failed(opened.status());
      manifest_text = read_up_to(opened->fd.get(), static_cast<std::size_t>(opened->size));
    } else {
      return Stop{JobResult::kFailed,
                  "model '" + req_.model_id +
                      "' has no version to start from; name a model.yaml for its first one in "
                      "train.yaml's `manifest`"};
    }
    auto manifest = parse_manifest_text(manifest_text, "the new version's model.yaml");
    if (!manifest.ok()) return failed(manifest.status());
    manifest_text_ = std::move(manifest_text);
    manifest_ = std::move(manifest).value();
    if (spec_.trainer == "xgboost" && manifest_.runtime != "xgboost" &&
        manifest_.runtime != "tree") {
      return Stop{JobResult::kFailed,
                  "the xgboost trainer writes models for runtime xgboost or tree; this model's "
                  "model.yaml names another runtime"};
    }
    schema_ = std::make_shared<const Schema>(manifest_.schema);
    say("model " + req_.model_id + ": trainer " + spec_.trainer + ", mode " +
        std::string(to_string(spec_.mode)) + ", parent " +
        (parent_ > 0 ? "version " + std::to_string(parent_) : std::string("none")));
    return check_cancel();
  }

  std::optional<Stop> read_data() {
    stage("reading data");
    const DatasetLimits limits{spec_.data.max_rows, spec_.data.max_bytes};
    Result<Dataset> data = Status::Ok();
    if (spec_.data.source == DataSource::kFiles) {
      std::vector<std::filesystem::path> files;
      for (const auto& f : spec_.data.files) files.push_back(model_dir_ / f);
      data = read_files(model_dir_, files, schema_, spec_.data.label, limits, report_, cancel_);
      if (!data.ok() && cancelled()) return check_cancel();
    } else {
      if (req_.postgres.empty()) {
        return Stop{JobResult::kFailed,
                    "data.source " + std::string(to_string(spec_.data.source)) +
                        " needs a PostgreSQL connection (--postgres, or $FORKLIFT_TRAIN_POSTGRES)"};
      }
      const bool events = spec_.data.source == DataSource::kEvents;
      RowReader reader(schema_, events ? std::string("label") : spec_.data.label, limits);
      PostgresQuery query =
          events ? events_query(req_.postgres, req_.model_id, spec_.data.window_hours)
                 : PostgresQuery{req_.postgres, spec_.data.query, {}};
      if (Status s = read_postgres_rows(query, reader, cancel_); !s.ok()) {
        if (cancelled()) return check_cancel();
        return failed(s);
      }
      report_ = reader.report();
      data = reader.finish(events ? "prediction events with labels" : "the training query");
    }
    if (!data.ok()) return failed(data.status());
    data_.emplace(std::move(data).value());
    sha256_ = data_->sha256();
    say("read " + std::to_string(data_->rows()) + " rows (" + std::to_string(report_.rows_skipped) +
        " skipped" + (report_.truncated ? ", stopped at data.max_rows or data.max_mb" : "") +
        "), sha256 " + sha256_.substr(0, 12));
    for (const auto& p : report_.problems) say("skipped " + p);
    return check_cancel();
  }

  std::optional<Stop> split() {
    split_ = split_rows(data_->rows(), spec_.split.holdout, spec_.split.seed,
                        spec_.split.kind == SplitKind::kLast);
    if (split_.holdout.size() < spec_.evaluation.min_holdout_rows || split_.train.empty()) {
      return Stop{JobResult::kFailed, "too few rows: " + std::to_string(split_.train.size()) +
                                          " to train on and " +
                                          std::to_string(split_.holdout.size()) +
                                          " held out (evaluation.min_holdout_rows is " +
                                          std::to_string(spec_.evaluation.min_holdout_rows) + ")"};
    }
    say("split: " + std::to_string(split_.train.size()) + " rows to train on, " +
        std::to_string(split_.holdout.size()) + " held out");
    return std::nullopt;
  }

  // The parent's other files (a python model's model.py, its helpers) go with the new version:
  // top-level regular files inside the repository, at most kMaxSupportingBytes in all.
  Status copy_supporting_files() {
    if (parent_ == 0) return Status::Ok();
    return staged_->copy_files_from(
        parent_dir_, req_.repository,
        {"model.yaml", "selftest.jsonl", "profile.json", "lineage.json", manifest_.artifact},
        kMaxSupportingBytes);
  }

  std::optional<Stop> train() {
    auto staged = StagedVersion::create(model_dir_, req_.job_id);
    if (!staged.ok()) return failed(staged.status());
    staged_.emplace(std::move(staged).value());
    if (Status s = copy_supporting_files(); !s.ok()) return failed(s);
    TrainInput in;
    in.spec = &spec_;
    in.data = &*data_;
    in.split = &split_;
    in.model_dir = model_dir_;
    if (parent_ > 0) {
      auto artifact = real_path_within(req_.repository, parent_dir_ / manifest_.artifact);
      if (!artifact.ok() && spec_.mode != TrainMode::kScratch) return failed(artifact.status());
      if (artifact.ok()) in.parent_artifact = *artifact;
    }
    in.output = staged_->dir() / manifest_.artifact;
    in.progress = progress_;
    in.log = log_;
    in.cancel = cancel_;
    if (spec_.trainer == "xgboost" && !spec_.params.count("nthread")) {
      spec_.params["nthread"] = std::to_string(req_.threads);
    }
    stage("training", 0, static_cast<std::size_t>(spec_.rounds));
    auto trained = trainer_->train(in);
    if (cancelled()) return check_cancel();
    if (!trained.ok()) return failed(trained.status());
    trained_ = std::move(trained).value();
    if (Status s = staged_->sync(manifest_.artifact); !s.ok()) return failed(s);
    if (Status s = staged_->write("model.yaml", manifest_text_); !s.ok()) return failed(s);
    say(trained_.rounds > 0 ? "trained: " + std::to_string(trained_.rounds) + " rounds in the model"
                            : std::string("trained"));
    return check_cancel();
  }

  std::optional<Stop> evaluate() {
    stage("evaluating");
    const std::string metric = default_metric(spec_);
    outcome_.metric = metric;
    auto candidate = load_untested_version(staged_->dir(), req_.model_id, parent_ + 1);
    if (!candidate.ok()) return failed(candidate.status());
    auto predictions = predict_rows(*(*candidate)->model, *data_, split_.holdout, &outputs_);
    if (!predictions.ok()) return failed(predictions.status());
    std::vector<double> labels;
    for (std::size_t r : split_.holdout) labels.push_back(data_->label(r));
    auto score = evaluate_metric(metric, *predictions, labels);
    if (!score.ok()) return failed(score.status());
    outcome_.candidate_metric = *score;
    if (parent_ > 0) {
      // The parent as the server runs it, self-tests included: a parent that no longer passes
      // them is no bar to clear.
      LoadOutcome parent = load_version(parent_dir_, req_.model_id, parent_);
      if (!parent.loaded) {
        say("the parent version does not load (" + parent.status.message() +
            "); the new version is not compared with it");
      } else {
        auto parent_predictions = predict_rows(*parent.loaded->model, *data_, split_.holdout);
        if (!parent_predictions.ok()) return failed(parent_predictions.status());
        auto parent_score = evaluate_metric(metric, *parent_predictions, labels);
        if (!parent_score.ok()) return failed(parent_score.status());
        outcome_.parent_metric = *parent_score;
      }
    }
    say("held-out " + metric + ": new " + fixed(outcome_.candidate_metric) +
        (std::isnan(outcome_.parent_metric)
             ? std::string()
             : ", version " + std::to_string(parent_) + " " + fixed(outcome_.parent_metric)));
    if (!std::isnan(outcome_.parent_metric)) {
      const double parent = outcome_.parent_metric, mine = outcome_.candidate_metric;
      const double allowed = spec_.evaluation.max_regression;
      // Relative to the parent's figure; a tiny absolute slack keeps a perfect parent (0 error)
      // from refusing an equally perfect candidate on rounding.
      const bool worse = higher_is_better(metric) ? mine < parent * (1 - allowed) - 1e-12
                                                  : mine > parent * (1 + allowed) + 1e-12;
      if (worse) {
        return Stop{JobResult::kRefused,
                    "held-out " + metric + " " + fixed(mine) + " is worse than version " +
                        std::to_string(parent_) + "'s " + fixed(parent) +
                        " by more than evaluation.max_regression (" + fixed(allowed * 100) + "%)"};
      }
    }
    return check_cancel();
  }

  Result<double> evaluate_metric(const std::string& metric, const std::vector<double>& predictions,
                                 const std::vector<double>& labels) const {
    return training::evaluate(metric, predictions, labels, spec_.evaluation.threshold);
  }

  std::optional<Stop> write_version() {
    stage("writing");
    if (Status s = staged_->write(
            "selftest.jsonl", selftest_lines(*data_, split_.holdout, outputs_, spec_.selftests));
        !s.ok()) {
      return failed(s);
    }
    const Batch reference = data_->batch(split_.holdout);
    FeatureProfile profile =
        build_feature_profile(reference, outputs_, spec_.profile_bins,
                              "training job " + req_.job_id + " (held-out rows)");
    if (Status s = staged_->write("profile.json", feature_profile_to_json(profile)); !s.ok()) {
      return failed(s);
    }
    outcome_.lineage_json = lineage();
    if (Status s = staged_->write("lineage.json", outcome_.lineage_json); !s.ok()) return failed(s);
    stage("self-testing");
    LoadOutcome check = load_version(staged_->dir(), req_.model_id, parent_ + 1);
    if (!check.loaded) {
      return Stop{
          JobResult::kFailed,
          "the new version does not load as the server would load it: " + check.status.message()};
    }
    if (auto stop = check_cancel()) return stop;
    auto version = staged_->publish();
    if (!version.ok()) return failed(version.status());
    outcome_.version = *version;
    outcome_.result = JobResult::kPublished;
    outcome_.reason = "published version " + std::to_string(*version) + " of " + req_.model_id;
    say(outcome_.reason);
    stage("published");
    return std::nullopt;
  }

  std::string lineage() const {
    std::string j = "{\"format\":1,\"model_id\":";
    json::append_string(j, req_.model_id);
    j += ",\"job_id\":";
    json::append_string(j, req_.job_id);
    j += ",\"parent_version\":";
    if (parent_ > 0) {
      json::append_int(j, parent_);
    } else {
      j += "null";
    }
    j += ",\"trainer\":";
    json::append_string(j, spec_.trainer);
    j += ",\"mode\":";
    json::append_string(j, to_string(spec_.mode));
    j += ",\"data\":{\"source\":";
    json::append_string(j, to_string(spec_.data.source));
    if (spec_.data.source == DataSource::kFiles) {
      j += ",\"files\":[";
      for (std::size_t i = 0; i < spec_.data.files.size(); ++i) {
        if (i) j.push_back(',');
        json::append_string(j, spec_.data.files[i]);
      }
      j += "]";
    } else if (spec_.data.source == DataSource::kPostgres) {
      j += ",\"query\":";
      json::append_string(j, spec_.data.query);
    }
    if (spec_.data.window_hours > 0) {
      j += ",\"window_hours\":";
      json::append_double(j, spec_.data.window_hours);
    }
    j += ",\"rows\":";
    json::append_int(j, static_cast<std::int64_t>(data_->rows()));
    j += ",\"bytes_read\":";
    json::append_int(j, static_cast<std::int64_t>(report_.bytes_read));
    j += ",\"rows_skipped\":";
    json::append_int(j, static_cast<std::int64_t>(report_.rows_skipped));
    j += ",\"truncated\":";
    j += report_.truncated ? "true" : "false";
    j += ",\"sha256\":";
    json::append_string(j, sha256_);
    j += ",\"train_rows\":";
    json::append_int(j, static_cast<std::int64_t>(split_.train.size()));
    j += ",\"holdout_rows\":";
    json::append_int(j, static_cast<std::int64_t>(split_.holdout.size()));
    j += ",\"split\":{\"holdout\":";
    json::append_double(j, spec_.split.holdout);
    j += ",\"seed\":";
    json::append_int(j, static_cast<std::int64_t>(spec_.split.seed));
    j += ",\"by\":";
    j += spec_.split.kind == SplitKind::kLast ? "\"last\"" : "\"random\"";
    j += "}},\"params\":{";
    bool first = true;
    for (const auto& [k, v] : trained_.params) {
      if (!first) j.push_back(',');
      first = false;
      json::append_string(j, k);
      j.push_back(':');
      json::append_string(j, v);
    }
    j += "},\"rounds\":";
    json::append_int(j, trained_.rounds);
    j += ",\"metrics\":{\"name\":";
    json::append_string(j, outcome_.metric);
    j += ",\"holdout\":";
    json::append_double(j, outcome_.candidate_metric);
    j += ",\"parent_holdout\":";
    json::append_double(j, outcome_.parent_metric);
    j += ",\"history_metric\":";
    json::append_string(j, trained_.history_metric);
    j += ",\"history\":[";
    for (std::size_t i = 0; i < trained_.history.size(); ++i) {
      if (i) j.push_back(',');
      json::append_double(j, trained_.history[i]);
    }
    j += "]},\"code_version\":";
    json::append_string(j, req_.code_version);
    j += ",\"started\":";
    json::append_string(j, started_);
    j += ",\"finished\":";
    json::append_string(j, now_iso8601());
    j += "}\n";
    return j;
  }

  const JobRequest& req_;
  const ProgressFn& progress_;
  const LogFn& log_;
  const std::atomic<bool>* cancel_;
  std::filesystem::path model_dir_;
  std::filesystem::path parent_dir_;
  TrainSpec spec_;
  std::unique_ptr<Trainer> trainer_;
  std::int64_t parent_ = 0;
  std::string manifest_text_;
  Manifest manifest_;
  std::shared_ptr<const Schema> schema_;
  std::optional<Dataset> data_;
  ReadReport report_;
  std::string sha256_;
  Split split_;
  std::optional<StagedVersion> staged_;
  TrainOutput trained_;
  std::vector<Value> outputs_;  // the new version's, for the held-out rows
  std::string started_;
  JobOutcome outcome_;
};

}  // namespace

std::string_view to_string(JobResult result) {
  switch (result) {
    case JobResult::kPublished:
      return "published";
    case JobResult::kRefused:
      return "refused";
    case JobResult::kFailed:
      return "failed";
    case JobResult::kCancelled:
      return "cancelled";
  }
  return "failed";
}

JobOutcome run_training_job(const JobRequest& request, const ProgressFn& progress, const LogFn& log,
                            const std::atomic<bool>* cancel) {
  return Job(request, progress, log, cancel).run();
}

}  // namespace forklift::training
