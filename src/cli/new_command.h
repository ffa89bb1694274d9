// `forklift new`: asks a few questions (or takes them as flags) and writes a complete service
// repository for a team from the templates in templates/service (installed with forklift).
#pragma once

#include <filesystem>
#include <istream>
#include <optional>
#include <ostream>
#include <string>

#include "forklift/status.h"

namespace forklift {

struct ServiceAnswers {
  std::optional<std::string> name;      // DNS-1123 label
  std::optional<std::string> team;      // GitHub team, e.g. @lyft/pricing
  std::optional<std::string> oncall;    // e-mail or pager handle
  std::optional<std::string> runtime;   // cpp | python | xgboost | torchscript
  std::optional<std::string> port;      // 1024-65534
  std::optional<std::string> registry;  // container registry host[/path]
  std::optional<std::string> region;    // cloud region, e.g. us-east-1
};

struct NewOptions {
  std::filesystem::path directory = ".";
  ServiceAnswers answers;
  bool yes = false;            // take the defaults for every question not answered by a flag
  bool force = false;          // write into a non-empty directory
  bool with_training = false;  // also write train.yaml, a trainer and the training CronJob
  std::string templates;       // else $FORKLIFT_TEMPLATES, else the installed or source templates
};

// Each answer's check: OK, or why not (shown before the question is asked again).
Status validate_answer(const std::string& question, const std::string& value);

// Runs the command; questions go to `out` and answers come from `in`. Returns the exit code.
int run_new(const NewOptions& options, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace forklift
