// `forklift train MODEL`: one training job in the foreground (training/training_job.h), with a
// progress bar on a terminal and a line per stage (and per tenth of the rounds) otherwise.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <thread>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "common/json_writer.h"
#include "core/repository.h"
#include "observability/log.h"
#include "runtimes/builtin.h"
#include "training/job_id.h"
#include "training/training_job.h"

namespace forklift {
namespace {

// Documented in docs/reference/cli.md.
constexpr int kExitWorseThanProduction = 3;
constexpr int kCancelled = 130;

struct TrainOptions {
  std::string model_id;
  std::string repository;
  std::int64_t parent = 0;
  std::string postgres;
  std::string job_id;
  int threads = 0;
  bool json = false;
};

std::atomic<bool> g_cancel{false};

extern "C" void on_signal(int) {
  g_cancel.store(true);
}

// Draws progress on stderr: a bar redrawn in place on a terminal, else plain lines (a stage as it
// starts, and training every tenth of its rounds) that a CI log keeps readable.
class ProgressPrinter {
 public:
  ProgressPrinter() : tty_(::isatty(STDERR_FILENO) == 1) {}
  ~ProgressPrinter() { end_line(); }

  void operator()(const training::Progress& p) {
    if (p.stage != "training" || p.total == 0) {
      if (p.stage != stage_) {
        end_line();
        std::fprintf(stderr, "  %s\n", p.stage.c_str());
        stage_ = p.stage;
      }
      return;
    }
    stage_ = p.stage;
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(kWidth * p.done / p.total);
      std::fprintf(stderr, "\r  training [%.*s%*s] %zu/%zu rounds", filled,
                   "##############################", kWidth - filled, "", p.done, p.total);
      if (!std::isnan(p.holdout_value)) {
        std::fprintf(stderr, "  held-out %s %.6g", p.metric.c_str(), p.holdout_value);
      }
      std::fflush(stderr);
      open_line_ = true;
      return;
    }
    const std::size_t tenth = std::max<std::size_t>(1, p.total / 10);
    if (p.done % tenth == 0 || p.done == p.total) {
      std::fprintf(stderr, "  training: %zu/%zu rounds", p.done, p.total);
      if (!std::isnan(p.holdout_value)) {
        std::fprintf(stderr, ", held-out %s %.6g", p.metric.c_str(), p.holdout_value);
      }
      std::fputc('\n', stderr);
    }
  }
  void log(const std::string& line) {
    end_line();
    std::fprintf(stderr, "forklift train: %s\n", line.c_str());
  }

 private:
  void end_line() {
    if (open_line_) std::fputc('\n', stderr);
    open_line_ = false;
  }
  bool tty_;
  bool open_line_ = false;
  std::string stage_;
};

std::string outcome_json(const training::JobOutcome& o, const std::string& job_id) {
  std::string j = "{\"job_id\":";
  json::append_string(j, job_id);
  j += ",\"result\":";
  json::append_string(j, training::to_string(o.result));
  j += ",\"reason\":";
  json::append_string(j, o.reason);
  j += ",\"version\":";
  json::append_int(j, o.version);
  j += ",\"parent\":";
  json::append_int(j, o.parent);
  j += ",\"metric\":";
  json::append_string(j, o.metric);
  j += ",\"holdout\":";
  json::append_double(j, o.candidate_metric);
  j += ",\"parent_holdout\":";
  json::append_double(j, o.parent_metric);
  j += "}";
  return j;
}

int run_train(const TrainOptions& o) {
  register_builtin_runtimes();
  if (!is_valid_model_id(o.model_id)) {
    std::fprintf(stderr, "forklift train: '%s' is not a model id\n", o.model_id.c_str());
    return kExitUsage;
  }
  const std::filesystem::path model_dir = std::filesystem::path(o.repository) / o.model_id;
  std::error_code ec;
  if (!std::filesystem::is_directory(model_dir, ec)) {
    std::fprintf(stderr, "forklift train: %s is not a directory\n", model_dir.c_str());
    return kExitUsage;
  }
  training::JobRequest request;
  request.repository = std::filesystem::absolute(o.repository).lexically_normal();
  request.model_id = o.model_id;
  if (!o.job_id.empty() && !training::is_valid_job_id(o.job_id)) {
    std::fprintf(stderr, "forklift train: --job-id is 1 to 64 of letters, digits, _ and -\n");
    return kExitUsage;
  }
  request.job_id = o.job_id.empty() ? training::new_job_id(0) : o.job_id;
  request.parent = o.parent;
  request.postgres = o.postgres;
  if (request.postgres.empty()) {
    if (const char* env = std::getenv("FORKLIFT_TRAIN_POSTGRES")) request.postgres = env;
  }
  request.code_version = "forklift " FORKLIFT_VERSION;
  request.threads = o.threads > 0
                        ? o.threads
                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  ProgressPrinter printer;
  const training::ProgressFn progress = [&](const training::Progress& p) { printer(p); };
  const training::LogFn log = [&](const std::string& line) { printer.log(line); };
  training::JobOutcome outcome = training::run_training_job(request, progress, log, &g_cancel);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (o.json) std::printf("%s\n", outcome_json(outcome, request.job_id).c_str());
  switch (outcome.result) {
    case training::JobResult::kPublished:
      if (!o.json) std::printf("%s\n", outcome.reason.c_str());
      return 0;
    case training::JobResult::kRefused:
      return kExitWorseThanProduction;
    case training::JobResult::kCancelled:
      return kCancelled;
    case training::JobResult::kFailed:
      return kExitFailed;
  }
  return kExitFailed;
}

}  // namespace

Command add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  CLI::App* cmd = app.add_subcommand(
      "train", "Train a new version of a model as its train.yaml says, test it, and publish it");
  cmd->add_option("model", o->model_id, "The model id")->required();
  cmd->add_option("--model-repository", o->repository, "The model repository")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--parent", o->parent,
                  "The version to start from and compare with (default: the newest)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 62));
  cmd->add_option("--postgres", o->postgres,
                  "PostgreSQL for data.source postgres or events (or $FORKLIFT_TRAIN_POSTGRES)");
  cmd->add_option("--job-id", o->job_id, "Names the job (default: its start time)");
  cmd->add_option("--threads", o->threads, "Trainer threads (default: one per core)")
      ->check(CLI::Range(1, 256));
  cmd->add_flag("--json", o->json, "Print the outcome as one JSON object on stdout");
  return {cmd, [o] {
            log::set_min_level(log::Level::kWarn);
            return run_train(*o);
          }};
}

}  // namespace forklift
