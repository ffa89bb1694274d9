#include "cli/new_command.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <kainjow/mustache.hpp>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <vector>

#include "cli/commands.h"
#include "cli/exit_codes.h"

namespace forklift {
namespace {

struct Question {
  std::string key;
  std::string prompt;
  std::string fallback;
  std::optional<std::string> ServiceAnswers::*answer;
};

std::vector<Question> questions(const ServiceAnswers& given) {
  const std::string name = given.name.value_or("my-model-service");
  return {
      {"name", "Service name (lowercase letters, digits and '-')", "my-model-service",
       &ServiceAnswers::name},
      {"team", "Owning team (GitHub team, for CODEOWNERS)", "@my-org/" + name + "-owners",
       &ServiceAnswers::team},
      {"oncall", "On-call contact (e-mail or pager handle)", name + "-oncall@example.com",
       &ServiceAnswers::oncall},
      {"runtime", "Runtime of the first model (cpp, python, xgboost or torchscript)", "cpp",
       &ServiceAnswers::runtime},
      {"port", "Port the service listens on", "8080", &ServiceAnswers::port},
      {"registry", "Container registry", "registry.example.com/ml", &ServiceAnswers::registry},
      {"region", "Cloud region", "us-east-1", &ServiceAnswers::region},
  };
}

std::string snake(const std::string& name) {
  std::string out = name;
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

// A Kubernetes label value from a team name: "@lyft/pricing" -> "lyft-pricing".
std::string label_value(const std::string& team) {
  std::string out;
  for (char c : team) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.substr(0, 63);
}

std::filesystem::path find_templates(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("FORKLIFT_TEMPLATES")) return env;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto installed = exe.parent_path().parent_path() / "share/forklift/templates/service";
    if (std::filesystem::is_directory(installed, ec)) return installed;
  }
  return FORKLIFT_SOURCE_TEMPLATES;  // running from a build directory
}

// The monitoring forklift ships (deploy/prometheus, deploy/grafana), which a new service gets a
// copy of in deploy/k8s/monitoring: installed flat in share/forklift/monitoring, or read from
// the source tree when forklift runs from a build directory. Each: where it is in the source
// tree, and its name in both other places.
struct MonitoringFile {
  const char* source;
  const char* name;
};
constexpr MonitoringFile kMonitoringFiles[] = {
    {"prometheus/forklift-rules.yaml", "forklift-rules.yaml"},
    {"prometheus/forklift-rules.test.yaml", "forklift-rules.test.yaml"},
    {"grafana/forklift-dashboard.json", "forklift-dashboard.json"},
};

// destination (relative to the new repository) -> file to copy
std::map<std::filesystem::path, std::filesystem::path> monitoring_files() {
  std::map<std::filesystem::path, std::filesystem::path> out;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  const auto installed =
      ec ? std::filesystem::path() : exe.parent_path().parent_path() / "share/forklift/monitoring";
  const bool use_installed = !installed.empty() && std::filesystem::is_directory(installed, ec);
  for (const MonitoringFile& f : kMonitoringFiles) {
    out[std::filesystem::path("deploy/k8s/monitoring") / f.name] =
        use_installed ? installed / f.name
                      : std::filesystem::path(FORKLIFT_SOURCE_DEPLOY) / f.source;
  }
  return out;
}

Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path.string());
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

Status validate_answer(const std::string& question, const std::string& value) {
  const auto matches = [&](const char* pattern) {
    return std::regex_match(value, std::regex(pattern));
  };
  if (question == "name") {
    if (value.size() > 63 || !matches("[a-z]([-a-z0-9]*[a-z0-9])?")) {
      return InvalidArgument(
          "a service name is a DNS-1123 label: 1-63 lowercase letters, digits and '-', starting "
          "with a letter and not ending with '-'");
    }
  } else if (question == "team") {
    if (!matches("@[A-Za-z0-9][-A-Za-z0-9_.]*(/[A-Za-z0-9][-A-Za-z0-9_.]*)?")) {
      return InvalidArgument("a team is a GitHub team or user, like @my-org/pricing");
    }
  } else if (question == "oncall") {
    if (value.empty() || value.size() > 200 || !matches("[^\\s\"'`\\\\]+")) {
      return InvalidArgument("an on-call contact is an e-mail address or handle, without spaces");
    }
  } else if (question == "runtime") {
    if (value == "torchscript" && FORKLIFT_TEMPLATE_HAS_TORCH == 0) {
      return InvalidArgument("this forklift was built without the torchscript runtime");
    }
    if (value == "python" && FORKLIFT_TEMPLATE_HAS_PYTHON == 0) {
      return InvalidArgument("this forklift was built without the python runtime");
    }
    if (value != "cpp" && value != "python" && value != "xgboost" && value != "torchscript") {
      return InvalidArgument("choose cpp, python, xgboost or torchscript");
    }
  } else if (question == "port") {
    if (!matches("[0-9]{1,5}") || std::stoi(value) < 1024 || std::stoi(value) > 65534) {
      return InvalidArgument("a port is a number from 1024 to 65534");
    }
  } else if (question == "registry") {
    if (!matches("[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9][-a-z0-9._]*)*")) {
      return InvalidArgument(
          "a registry is a host name with an optional port and path, like "
          "registry.example.com/ml");
    }
  } else if (question == "region") {
    if (!matches("[a-z]{2,}(-[a-z]+)+-[0-9]+|[a-z]+-[a-z]+[0-9]+")) {
      return InvalidArgument("a region looks like us-east-1 or europe-west4");
    }
  }
  return Status::Ok();
}

int run_new(const NewOptions& options, std::istream& in, std::ostream& out, std::ostream& err) {
  const std::filesystem::path templates = find_templates(options.templates);
  std::error_code ec;
  if (!std::filesystem::is_directory(templates / "common", ec)) {
    err << "forklift new: no service templates in " << templates.string()
        << " (set --templates or FORKLIFT_TEMPLATES)\n";
    return kExitFailed;
  }
  const std::filesystem::path dir = options.directory;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_empty(dir, ec) && !options.force) {
    err << "forklift new: " << dir.string()
        << " is not empty; choose another directory or pass --force\n";
    return kExitFailed;
  }

  // Answers from flags are checked; the rest are asked (or defaulted with --yes).
  ServiceAnswers answers = options.answers;
  for (const Question& q : questions(answers)) {
    if (const auto& given = answers.*q.answer) {
      if (Status s = validate_answer(q.key, *given); !s.ok()) {
        err << "forklift new: --" << q.key << " '" << *given << "': " << s.message() << "\n";
        return kExitUsage;
      }
    }
  }
  const std::size_t count = questions(answers).size();
  for (std::size_t i = 0; i < count; ++i) {
    // Defaults depend on earlier answers (the team defaults from the name).
    const Question q = questions(answers)[i];
    if (answers.*q.answer) continue;
    if (options.yes) {
      answers.*q.answer = q.fallback;
      continue;
    }
    for (;;) {
      out << q.prompt << " [" << q.fallback << "]: " << std::flush;
      std::string line;
      if (!std::getline(in, line)) {
        err << "\nforklift new: no answer for '" << q.key << "' (use --yes for the defaults)\n";
        return kExitUsage;
      }
      line.erase(0, line.find_first_not_of(" \t\r"));
      line.erase(line.find_last_not_of(" \t\r") + 1);
      const std::string value = line.empty() ? q.fallback : line;
      if (Status s = validate_answer(q.key, value); !s.ok()) {
        out << "  " << s.message() << "\n";
        continue;
      }
      answers.*q.answer = value;
      break;
    }
  }

  if (options.with_training && *answers.runtime != "xgboost" && *answers.runtime != "python") {
    err << "forklift new: --with-training writes a trainer for the xgboost and python runtimes; "
        << "a " << *answers.runtime << " model has no built-in trainer (a python trainer in "
        << "train.yaml can still train it: see docs/how-to/retrain-with-python.md)\n";
    return kExitUsage;
  }

  using kainjow::mustache::data;
  data values;
  const int port = std::stoi(*answers.port);
  values.set("name", *answers.name);
  values.set("name_snake", snake(*answers.name));
  values.set("team", *answers.team);
  values.set("team_label", label_value(*answers.team));
  values.set("oncall", *answers.oncall);
  values.set("runtime", *answers.runtime);
  values.set("port", std::to_string(port));
  values.set("admin_port", std::to_string(port + 1));
  values.set("registry", *answers.registry);
  values.set("region", *answers.region);
  values.set("forklift_version", FORKLIFT_VERSION);
  values.set("is_cpp", *answers.runtime == "cpp");
  values.set("is_python", *answers.runtime == "python");
  values.set("is_xgboost", *answers.runtime == "xgboost");
  values.set("is_torchscript", *answers.runtime == "torchscript");
  values.set("is_trained", *answers.runtime == "xgboost" || *answers.runtime == "torchscript");
  values.set("with_training", options.with_training);
  values.set("forklift_has_torch", FORKLIFT_TEMPLATE_HAS_TORCH != 0);
  values.set("forklift_has_python", FORKLIFT_TEMPLATE_HAS_PYTHON != 0);

  // The common tree, then the runtime's files over it, then (--with-training) the training
  // files: the CronJob and volume, train.yaml and the runtime's trainer.
  std::vector<std::filesystem::path> layers = {templates / "common", templates / *answers.runtime};
  if (options.with_training) {
    layers.push_back(templates / "training" / "common");
    layers.push_back(templates / "training" / *answers.runtime);
  }
  std::map<std::filesystem::path, std::filesystem::path> files;  // destination -> template
  for (const auto& layer : layers) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(layer, ec)) {
      if (!e.is_regular_file()) continue;
      std::string rel = std::filesystem::relative(e.path(), layer).string();
      for (std::size_t at; (at = rel.find("__name__")) != std::string::npos;) {
        rel.replace(at, 8, *answers.name);
      }
      files[rel] = e.path();
    }
  }
  // The rules and dashboard, copied as they are (no template: their {{ }} are Prometheus's).
  for (const auto& [rel, source] : monitoring_files()) files[rel] = source;
  std::vector<std::string> written;
  for (const auto& [rel, source] : files) {
    auto text = read_file(source);
    if (!text.ok()) {
      err << "forklift new: " << text.status().message() << "\n";
      return kExitFailed;
    }
    std::filesystem::path target = dir / rel;
    std::string content = std::move(text).value();
    if (target.extension() == ".mustache") {
      target.replace_extension();
      kainjow::mustache::mustache tmpl(content);
      tmpl.set_custom_escape([](const std::string& s) { return s; });  // not HTML
      if (!tmpl.is_valid()) {
        err << "forklift new: template " << source.string() << ": " << tmpl.error_message() << "\n";
        return kExitFailed;
      }
      content = tmpl.render(values);
    }
    std::filesystem::create_directories(target.parent_path(), ec);
    std::ofstream file(target, std::ios::binary | std::ios::trunc);
    file << content;
    if (!file.flush()) {
      err << "forklift new: cannot write " << target.string() << "\n";
      return kExitFailed;
    }
    file.close();
    if (target.extension() == ".sh") {
      std::filesystem::permissions(target,
                                   std::filesystem::perms::owner_exec |
                                       std::filesystem::perms::group_exec |
                                       std::filesystem::perms::others_exec,
                                   std::filesystem::perm_options::add, ec);
    }
    written.push_back(std::filesystem::relative(target, dir).string());
  }
  std::sort(written.begin(), written.end());
  out << "Wrote " << written.size() << " files for " << *answers.name << " (" << *answers.runtime
      << " runtime) in " << dir.string() << ":\n";
  for (const auto& w : written) out << "  " << w << "\n";
  out << "\nNext: cd " << dir.string() << " && scripts/test.sh && scripts/serve.sh\n";
  if (options.with_training) {
    out << "Retrain: forklift train " << *answers.name << " --model-repository <repository> "
        << "(docs/how-to/retrain.md)\n";
  }
  return 0;
}

}  // namespace forklift

namespace forklift {

Command add_new_command(CLI::App& app) {
  auto options = std::make_shared<NewOptions>();
  CLI::App* cmd = app.add_subcommand(
      "new", "Write a new model-service repository (asks a few questions; flags answer them)");
  cmd->add_option("directory", options->directory, "Where to write it")->capture_default_str();
  const auto answer = [cmd](const char* flag, std::optional<std::string>& into, const char* what) {
    cmd->add_option_function<std::string>(
        flag, [&into](const std::string& v) { into = v; }, what);
  };
  answer("--name", options->answers.name, "Service name (a DNS-1123 label)");
  answer("--team", options->answers.team, "Owning GitHub team, e.g. @my-org/pricing");
  answer("--oncall", options->answers.oncall, "On-call contact");
  answer("--runtime", options->answers.runtime,
         "Runtime of the first model: cpp, xgboost, python or torchscript");
  answer("--port", options->answers.port, "Port the service listens on");
  answer("--registry", options->answers.registry, "Container registry");
  answer("--region", options->answers.region, "Cloud region");
  cmd->add_flag("--yes,-y", options->yes, "Take the defaults for every unanswered question");
  cmd->add_flag("--force", options->force, "Write into a non-empty directory");
  cmd->add_flag("--with-training", options->with_training,
                "Also write train.yaml, a trainer and a Kubernetes CronJob that retrains the model "
                "(xgboost and python runtimes)");
  cmd->add_option("--templates", options->templates,
                  "Service templates directory (default: the installed ones)");
  return {cmd, [options] { return run_new(*options, std::cin, std::cout, std::cerr); }};
}

}  // namespace forklift
