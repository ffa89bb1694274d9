// Training jobs: train.yaml, reading data (hostile rows and files included), the split, the
// metrics, staging and publishing a version, and whole jobs with the xgboost trainer.
#include <sys/file.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <random>

#include "core/repository.h"
#include "core/version_loader.h"
#include "runtimes/builtin.h"
#include "test_util.h"
#include "training/dataset.h"
#include "training/eval_metrics.h"
#include "training/staged_version.h"
#include "training/train_spec.h"
#include "training/training_job.h"

namespace forklift::training {
namespace {

using forklift::testing::TempDir;
namespace fs = std::filesystem;

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::shared_ptr<const Schema> two_floats(bool allow_missing = false) {
  Schema s;
  s.features = {{"x1", ValueType::kFloat, 1, allow_missing}, {"x2", ValueType::kFloat}};
  s.output = {"y", ValueType::kFloat};
  return std::make_shared<const Schema>(s);
}

// ---- train.yaml ----

TEST(TrainSpec, ReadsEveryField) {
  auto spec = parse_train_spec(R"(
trainer: xgboost
mode: continue
data: {source: files, files: [a.jsonl, b.csv], label: y, max_rows: 10, max_mb: 2}
split: {holdout: 0.25, seed: 9, by: last}
rounds: 12
params: {max_depth: 3, objective: "binary:logistic"}
evaluation: {threshold: 0.4, max_regression: 0.1, min_holdout_rows: 5}
selftests: 7
profile_bins: 5
)",
                               "t");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->trainer, "xgboost");
  EXPECT_EQ(spec->mode, TrainMode::kContinue);
  EXPECT_EQ(spec->data.files, (std::vector<std::string>{"a.jsonl", "b.csv"}));
  EXPECT_EQ(spec->data.label, "y");
  EXPECT_EQ(spec->data.max_rows, 10u);
  EXPECT_EQ(spec->data.max_bytes, 2u << 20);
  EXPECT_EQ(spec->split.kind, SplitKind::kLast);
  EXPECT_EQ(spec->split.seed, 9u);
  EXPECT_EQ(spec->rounds, 12);
  EXPECT_EQ(spec->params.at("max_depth"), "3");
  EXPECT_EQ(default_metric(*spec), "logloss");  // from the objective
  EXPECT_EQ(spec->selftests, 7u);
}

TEST(TrainSpec, RefusesWhatCannotWorkAndNamesTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"mode: scratch\ndata: {files: [a.jsonl]}", "'trainer'"},
      {"trainer: sklearn\ndata: {files: [a.jsonl]}", "'trainer'"},
      {"trainer: xgboost\ndata: {files: [a.jsonl]}\nroundz: 3", "'roundz'"},
      {"trainer: xgboost\ndata: {files: [../../etc/passwd]}", "'data.files[0]'"},
      {"trainer: xgboost\ndata: {files: /etc/passwd}", "'data.files'"},
      {"trainer: xgboost\ndata: {source: files}", "'data.files'"},
      {"trainer: xgboost\ndata: {source: postgres}", "'data.query'"},
      {"trainer: xgboost\ndata: {source: events, files: [a.jsonl]}", "'data.files'"},
      {"trainer: xgboost\ndata: {files: [a.jsonl]}\nsplit: {holdout: 1.5}", "'split.holdout'"},
      {"trainer: xgboost\ndata: {files: [a.jsonl]}\nrounds: 0", "'rounds'"},
      {"trainer: xgboost\ndata: {files: [a.jsonl]}\nparams: {a: [1, 2]}", "'params.a'"},
      {"trainer: python\nmode: continue\ndata: {files: [a.jsonl]}", "'mode'"},
      {"trainer: xgboost\ndata: {files: [a.jsonl]}\nevaluation: {metric: r2}",
       "'evaluation.metric'"},
  };
  for (const auto& [yaml, field] : cases) {
    auto spec = parse_train_spec(yaml, "train.yaml");
    ASSERT_FALSE(spec.ok()) << yaml;
    EXPECT_NE(spec.status().message().find(field), std::string::npos)
        << yaml << " -> " << spec.status().message();
  }
}

TEST(TrainSpec, AnInvalidFileIsNotQuotedInTheError) {
  auto spec = parse_train_spec("trainer: xgboost\nsecret: [unclosed \"hunter2", "train.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message().find("hunter2"), std::string::npos) << spec.status().message();
}

// ---- reading data ----

TEST(Dataset, ReadsJsonLinesFlatOrNestedAndSkipsBadRowsWithTheirReason) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 300; ++i) {
    text += i % 2 ? R"({"features": {"x1": 1.5, "x2": 2}, "y": 3})"
                  : R"({"x1": 1.5, "x2": 2, "y": 3, "unused": "kept out"})";
    text += "\n";
  }
  text += "not json\n";
  text += R"({"x1": 1, "x2": 2})"
          "\n";  // no label
  text += R"({"x1": "a", "x2": 2, "y": 1})"
          "\n";  // wrong type
  text += R"({"x1": 1, "x2": 2, "y": 1e300})"
          "\n";  // label out of range
  text += R"({"x1": 1e39, "x2": 2, "y": 1})"
          "\n";  // beyond float's range: refused, as serving refuses it
  write(dir.path() / "d.jsonl", text);
  ReadReport report;
  DatasetLimits limits;
  limits.max_bad_share = 0.05;
  auto data = read_files(dir.path(), {dir.path() / "d.jsonl"}, two_floats(), "y", limits, report);
  ASSERT_TRUE(data.ok()) << data.status().message();
  EXPECT_EQ(data->rows(), 300u);
  EXPECT_EQ(report.rows_skipped, 5u);
  ASSERT_EQ(report.problems.size(), 5u);
  EXPECT_NE(report.problems[0].find("d.jsonl:301"), std::string::npos);
  EXPECT_NE(report.problems[1].find("no label 'y'"), std::string::npos);
  EXPECT_NE(report.problems[2].find("feature 'x1'"), std::string::npos);
  EXPECT_NE(report.problems[4].find("feature 'x1' is beyond the float range"), std::string::npos)
      << report.problems[4];
  EXPECT_EQ(data->dense_row(0)[0], 1.5);
  EXPECT_EQ(data->label(299), 3);
}

TEST(Dataset, TooManyBadRowsRefuseTheData) {
  TempDir dir;
  write(dir.path() / "d.jsonl", "{\"x1\": 1, \"x2\": 2, \"y\": 1}\n{\"x1\": 1}\n");
  ReadReport report;
  auto data = read_files(dir.path(), {dir.path() / "d.jsonl"}, two_floats(), "y", {}, report);
  ASSERT_FALSE(data.ok());
  EXPECT_NE(data.status().message().find("1 of 2 rows cannot be read"), std::string::npos)
      << data.status().message();
}

TEST(Dataset, CsvAndJsonOfTheSameRowsHashAlike) {
  TempDir dir;
  write(dir.path() / "d.csv", "id,x2,\"x1\",y\r\n7,2.5,,1\r\n8,\"3\",4.25,0\r\n");
  write(dir.path() / "d.jsonl",
        "{\"x1\": null, \"x2\": 2.5, \"y\": 1}\n{\"x1\": 4.25, \"x2\": 3, \"y\": false}\n");
  ReadReport r1, r2;
  auto csv = read_files(dir.path(), {dir.path() / "d.csv"}, two_floats(true), "y", {}, r1);
  auto json = read_files(dir.path(), {dir.path() / "d.jsonl"}, two_floats(true), "y", {}, r2);
  ASSERT_TRUE(csv.ok()) << csv.status().message();
  ASSERT_TRUE(json.ok()) << json.status().message();
  EXPECT_EQ(csv->rows(), 2u);
  EXPECT_TRUE(std::isnan(csv->dense_row(0)[0]));
  EXPECT_EQ(csv->dense_row(1)[0], 4.25);
  EXPECT_EQ(csv->sha256(), json->sha256());
  EXPECT_EQ(csv->sha256().size(), 64u);
}

TEST(Dataset, HostileFilesCostOnlyThemselves) {
  TempDir dir;
  write(dir.path() / "outside.jsonl", "{\"x1\": 1, \"x2\": 2, \"y\": 1}\n");
  fs::create_directories(dir.path() / "model");
  fs::create_symlink(dir.path() / "outside.jsonl", dir.path() / "model" / "link.jsonl");
  ReadReport report;
  auto escaped = read_files(dir.path() / "model", {dir.path() / "model" / "link.jsonl"},
                            two_floats(), "y", {}, report);
  ASSERT_FALSE(escaped.ok());
  EXPECT_NE(escaped.status().message().find("outside"), std::string::npos);

  write(dir.path() / "model" / "data.parquet", "PAR1");
  auto format = read_files(dir.path() / "model", {dir.path() / "model" / "data.parquet"},
                           two_floats(), "y", {}, report);
  EXPECT_FALSE(format.ok());

  // A line of 2 MiB without a newline (a binary file) is one skipped row, not 2 MiB of memory.
  std::string huge(2 << 20, 'x');
  write(dir.path() / "model" / "big.jsonl",
        huge + "\n" + std::string(200, ' ') + "\n{\"x1\": 1, \"x2\": 2, \"y\": 1}\n");
  DatasetLimits lenient;
  lenient.max_bad_share = 1;
  auto big = read_files(dir.path() / "model", {dir.path() / "model" / "big.jsonl"}, two_floats(),
                        "y", lenient, report);
  ASSERT_TRUE(big.ok()) << big.status().message();
  EXPECT_EQ(big->rows(), 1u);
  EXPECT_NE(report.problems.front().find("longer than 1 MiB"), std::string::npos);
}

TEST(Dataset, ReadingStopsWhenCancelledOrAfterFourTimesItsMemoryOfText) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 100; ++i) text += "{\"x1\": 1, \"x2\": 2, \"y\": 1}\n";
  write(dir.path() / "d.jsonl", text + std::string(1 << 20, '\n'));  // then a megabyte of nothing
  ReadReport report;
  std::atomic<bool> cancel{true};
  auto cancelled =
      read_files(dir.path(), {dir.path() / "d.jsonl"}, two_floats(), "y", {}, report, &cancel);
  ASSERT_FALSE(cancelled.ok());
  EXPECT_EQ(cancelled.status().message(), "cancelled");
  DatasetLimits small;
  small.max_bytes = 64 << 10;  // 256 KiB of text scanned at most
  auto bounded = read_files(dir.path(), {dir.path() / "d.jsonl"}, two_floats(), "y", small, report);
  ASSERT_TRUE(bounded.ok()) << bounded.status().message();
  EXPECT_EQ(bounded->rows(), 100u);
  EXPECT_TRUE(report.truncated);
  EXPECT_LT(report.bytes_read, 2u << 20);
}

TEST(Dataset, StopsAtMaxRows) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 100; ++i) text += "{\"x1\": 1, \"x2\": 2, \"y\": 1}\n";
  write(dir.path() / "d.jsonl", text);
  ReadReport report;
  DatasetLimits limits;
  limits.max_rows = 10;
  auto data = read_files(dir.path(), {dir.path() / "d.jsonl"}, two_floats(), "y", limits, report);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->rows(), 10u);
  EXPECT_TRUE(report.truncated);
}

TEST(Dataset, RowsComeBackAsTheSchemaTypes) {
  Schema s;
  s.features = {{"f", ValueType::kFloat},
                {"i", ValueType::kInt},
                {"b", ValueType::kBool},
                {"s", ValueType::kString},
                {"v", ValueType::kFloatVector, 2}};
  s.output = {"y", ValueType::kFloat};
  RowReader reader(std::make_shared<const Schema>(s), "y", {});
  reader.add_json(R"({"f": 0.5, "i": 123456789, "b": true, "s": "sf", "v": [1, 2], "y": 4})", "1");
  // Held as doubles, integers beyond 2^53 would come back changed (from 2^63 - 512 on, their
  // conversion back was undefined): such a row is skipped, as are vector elements beyond float.
  RowReader bad(std::make_shared<const Schema>(s), "y", {});
  bad.add_json(R"({"f": 0.5, "i": 9007199254740993, "b": true, "s": "", "v": [1, 2], "y": 4})",
               "2");
  bad.add_json(R"({"f": 0.5, "i": 9223372036854775807, "b": true, "s": "", "v": [1, 2], "y": 4})",
               "3");
  bad.add_json(R"({"f": 0.5, "i": 9007199254740992, "b": true, "s": "", "v": [1, 1e39], "y": 4})",
               "4");
  EXPECT_EQ(bad.report().rows_skipped, 3u);
  ASSERT_EQ(bad.report().problems.size(), 3u);
  EXPECT_NE(bad.report().problems[1].find("beyond ±2^53"), std::string::npos)
      << bad.report().problems[1];
  EXPECT_NE(bad.report().problems[2].find("beyond the float range"), std::string::npos)
      << bad.report().problems[2];
  auto data = reader.finish("test");
  ASSERT_TRUE(data.ok()) << data.status().message();
  const Batch b = data->batch({0});
  EXPECT_EQ(std::get<double>(b.row(0)[0]), 0.5);
  EXPECT_EQ(std::get<std::int64_t>(b.row(0)[1]), 123456789);  // kept exactly
  EXPECT_EQ(std::get<bool>(b.row(0)[2]), true);
  EXPECT_EQ(std::get<std::string>(b.row(0)[3]), "sf");
  EXPECT_EQ(std::get<std::vector<float>>(b.row(0)[4]), (std::vector<float>{1, 2}));
  EXPECT_TRUE(data->has_strings());
}

// ---- split and metrics ----

TEST(Split, IsDeterministicAndNearItsShare) {
  const Split a = split_rows(10000, 0.2, 5, false);
  const Split b = split_rows(10000, 0.2, 5, false);
  EXPECT_EQ(a.holdout, b.holdout);
  EXPECT_NEAR(static_cast<double>(a.holdout.size()), 2000, 150);
  EXPECT_EQ(a.train.size() + a.holdout.size(), 10000u);
  EXPECT_NE(split_rows(10000, 0.2, 6, false).holdout, a.holdout);
  const Split last = split_rows(10, 0.2, 5, true);
  EXPECT_EQ(last.holdout, (std::vector<std::size_t>{8, 9}));
}

TEST(EvalMetrics, KnownValues) {
  EXPECT_DOUBLE_EQ(*evaluate("rmse", {1, 2, 3}, {1, 2, 6}), std::sqrt(3.0));
  EXPECT_DOUBLE_EQ(*evaluate("mae", {1, 2, 3}, {2, 2, 6}), 4.0 / 3);
  EXPECT_NEAR(*evaluate("logloss", {0.9, 0.2}, {1, 0}), -(std::log(0.9) + std::log(0.8)) / 2,
              1e-12);
  EXPECT_DOUBLE_EQ(*evaluate("accuracy", {0.9, 0.6, 0.2}, {1, 0, 0}), 2.0 / 3);
  // Scores 0.1 0.4 0.35 0.8 for labels 0 0 1 1: 3 of 4 pairs ordered right.
  EXPECT_DOUBLE_EQ(*evaluate("auc", {0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}), 0.75);
  EXPECT_DOUBLE_EQ(*evaluate("auc", {0.5, 0.5}, {0, 1}), 0.5);  // a tie counts half
  EXPECT_FALSE(evaluate("auc", {0.5, 0.5}, {1, 1}).ok());
  EXPECT_FALSE(evaluate("logloss", {0.5}, {2}).ok());
  EXPECT_FALSE(evaluate("rmse", {1}, {1, 2}).ok());
  EXPECT_FALSE(evaluate("rmse", {std::nan("")}, {1}).ok());
}

// ---- staging and publishing ----

TEST(StagedVersion, PublishesAsTheNextFreeNumberOrLeavesNothing) {
  TempDir repo;
  const fs::path model = repo.path() / "m";
  fs::create_directories(model / "1");
  fs::create_directories(model / "4");
  {
    auto staged = StagedVersion::create(model, "job1");
    ASSERT_TRUE(staged.ok());
    ASSERT_TRUE(staged->write("a.txt", "x").ok());
    EXPECT_TRUE(fs::exists(staged->dir() / "a.txt"));
    // The repository scan does not see it, and reports nothing about it.
    std::vector<std::string> skipped;
    auto scan = scan_repository(repo.path(), &skipped);
    ASSERT_TRUE(scan.ok());
    EXPECT_EQ(scan->front().versions, (std::vector<std::int64_t>{1, 4}));
    EXPECT_TRUE(skipped.empty());
  }  // dropped unpublished: removed
  EXPECT_EQ(std::distance(fs::directory_iterator(model), fs::directory_iterator()), 2);

  auto staged = StagedVersion::create(model, "job2");
  ASSERT_TRUE(staged.ok());
  ASSERT_TRUE(staged->write("a.txt", "x").ok());
  fs::create_directories(model / "5");  // another writer takes 5 meanwhile
  auto version = staged->publish();
  ASSERT_TRUE(version.ok()) << version.status().message();
  EXPECT_EQ(*version, 6);
  EXPECT_EQ(read_text(model / "6" / "a.txt"), "x");
  EXPECT_EQ(newest_version(model), 6);

  // No number is published that the repository scan would not read as a version.
  fs::create_directories(model / "999999999999999999");
  auto last = StagedVersion::create(model, "job3");
  ASSERT_TRUE(last.ok());
  auto none = last->publish();
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no version number is left"), std::string::npos);
}

TEST(StagedVersion, OnlyAbandonedStagingIsRemoved) {
  TempDir repo;
  const fs::path model = repo.path() / "m";
  fs::create_directories(model / ".train-dead");        // a job that was killed: nobody holds it
  fs::create_directories(model / ".train.making-new");  // being made: its lock not yet taken
  auto live = StagedVersion::create(model, "live");
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(remove_abandoned_staging(model), 1u);
  EXPECT_FALSE(fs::exists(model / ".train-dead"));
  EXPECT_TRUE(fs::exists(model / ".train.making-new"));
  EXPECT_TRUE(fs::exists(live->dir()));
  EXPECT_FALSE(StagedVersion::create(model, "../x").ok());
}

// ---- whole jobs ----

class TrainingJob : public ::testing::Test {
 protected:
  void SetUp() override {
    register_builtin_runtimes();
    model_ = repo_.path() / "lin";
    write(model_ / "template.yaml",
          "runtime: xgboost\nartifact: model.json\nfeatures:\n  - {name: x1, type: float}\n"
          "  - {name: x2, type: float, allow_missing: true}\noutput: {name: y, type: float}\n");
    std::mt19937 rng(3);
    std::normal_distribution<double> noise(0, 0.1);
    std::uniform_real_distribution<double> u(0, 1);
    std::string rows;
    for (int i = 0; i < 600; ++i) {
      const double x1 = u(rng), x2 = u(rng);
      rows += "{\"x1\": " + std::to_string(x1) +
              ", \"x2\": " + (i % 10 ? std::to_string(x2) : std::string("null")) +
              ", \"y\": " + std::to_string(3 * x1 + 2 * x2 + noise(rng)) + "}\n";
    }
    write(model_ / "data" / "rows.jsonl", rows);
  }

  void spec(const std::string& extra) {
    write(model_ / "train.yaml",
          "trainer: xgboost\nmanifest: template.yaml\n"
          "data: {files: [data/rows.jsonl], label: y}\n" +
              extra);
  }

  JobOutcome run(const std::string& job_id, const std::atomic<bool>* cancel = nullptr) {
    JobRequest request;
    request.repository = repo_.path();
    request.model_id = "lin";
    request.job_id = job_id;
    request.code_version = "test";
    stages_.clear();
    return run_training_job(
        request, [this](const Progress& p) { stages_.push_back(p.stage); },
        [this](const std::string& line) { log_ += line + "\n"; }, cancel);
  }

  TempDir repo_;
  fs::path model_;
  std::vector<std::string> stages_;
  std::string log_;
};

TEST_F(TrainingJob, TrainsTestsAndPublishesAVersionWithItsLineage) {
  spec("rounds: 30\nparams: {max_depth: 3}\nselftests: 5\n");
  JobOutcome first = run("first");
  ASSERT_EQ(first.result, JobResult::kPublished) << first.reason << "\n" << log_;
  EXPECT_EQ(first.version, 1);
  EXPECT_EQ(first.parent, 0);
  EXPECT_LT(first.candidate_metric, 0.5);
  for (const char* file :
       {"model.yaml", "model.json", "selftest.jsonl", "profile.json", "lineage.json"}) {
    EXPECT_TRUE(fs::exists(model_ / "1" / file)) << file;
  }
  // The version loads and passes its own self-tests as the server would load it.
  LoadOutcome loaded = load_version(model_ / "1", "lin", 1);
  ASSERT_TRUE(loaded.loaded) << loaded.status.message();
  EXPECT_EQ(loaded.selftest->cases, 5u);
  EXPECT_TRUE(loaded.loaded->drift);  // its profile.json is read
  const std::string lineage = read_text(model_ / "1" / "lineage.json");
  EXPECT_NE(lineage.find("\"parent_version\":null"), std::string::npos) << lineage;
  EXPECT_NE(lineage.find("\"sha256\":\""), std::string::npos);
  EXPECT_NE(lineage.find("\"rows\":600"), std::string::npos);
  EXPECT_EQ(stages_.back(), "published");

  // Continue from it: more trees, compared with version 1 on the same held-out rows.
  spec(
      "mode: continue\nrounds: 10\nparams: {max_depth: 3}\n"
      "evaluation: {max_regression: 0.5}\n");
  JobOutcome second = run("second");
  ASSERT_EQ(second.result, JobResult::kPublished) << second.reason << "\n" << log_;
  EXPECT_EQ(second.version, 2);
  EXPECT_EQ(second.parent, 1);
  EXPECT_NEAR(second.parent_metric, first.candidate_metric, 1e-9);
  EXPECT_NE(read_text(model_ / "2" / "lineage.json").find("\"rounds\":40"), std::string::npos);
}

TEST_F(TrainingJob, AWorseModelIsRefusedAndLeavesNoVersion) {
  spec("rounds: 30\nparams: {max_depth: 3}\n");
  ASSERT_EQ(run("good").result, JobResult::kPublished) << log_;
  spec("rounds: 1\nparams: {max_depth: 1, eta: 0.01}\nevaluation: {max_regression: 0.02}\n");
  JobOutcome worse = run("worse");
  EXPECT_EQ(worse.result, JobResult::kRefused) << worse.reason;
  EXPECT_NE(worse.reason.find("worse than version 1"), std::string::npos) << worse.reason;
  EXPECT_EQ(newest_version(model_), 1);
  for (const auto& e : fs::directory_iterator(model_)) {
    EXPECT_NE(e.path().filename().string().rfind(".train-", 0), 0u) << e.path();
  }
}

TEST_F(TrainingJob, ACancelledJobLeavesNoVersion) {
  spec("rounds: 1000\n");
  std::atomic<bool> cancel{true};
  JobOutcome outcome = run("cancelled", &cancel);
  EXPECT_EQ(outcome.result, JobResult::kCancelled);
  EXPECT_EQ(newest_version(model_), 0);
  EXPECT_EQ(std::distance(fs::directory_iterator(model_), fs::directory_iterator()), 3);
}

TEST_F(TrainingJob, FailuresSayWhy) {
  write(model_ / "train.yaml", "trainer: xgboost\ndata: {files: [data/rows.jsonl], label: y}\n");
  JobOutcome no_parent = run("a");
  EXPECT_EQ(no_parent.result, JobResult::kFailed);
  EXPECT_NE(no_parent.reason.find("no version to start from"), std::string::npos);

  spec("mode: continue\n");
  JobOutcome no_trees = run("b");
  EXPECT_EQ(no_trees.result, JobResult::kFailed);
  EXPECT_NE(no_trees.reason.find("needs a parent version"), std::string::npos) << no_trees.reason;

  write(model_ / "train.yaml",
        "trainer: xgboost\nmanifest: template.yaml\ndata: {source: events}\n");
  JobOutcome no_database = run("c");
  EXPECT_EQ(no_database.result, JobResult::kFailed);
  EXPECT_NE(no_database.reason.find("PostgreSQL connection"), std::string::npos);

  spec("split: {holdout: 0.01}\nevaluation: {min_holdout_rows: 100}\n");
  JobOutcome few = run("d");
  EXPECT_EQ(few.result, JobResult::kFailed);
  EXPECT_NE(few.reason.find("too few rows"), std::string::npos) << few.reason;
  EXPECT_EQ(newest_version(model_), 0);
}

}  // namespace
}  // namespace forklift::training
