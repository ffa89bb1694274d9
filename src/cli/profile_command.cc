// `forklift profile VERSION_DIR`: writes the version's profile.json (core/drift/feature_profile.h)
// from reference data, by default its self-test rows, with the version's own predictions for the
// output distribution.
#include <simdjson.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <memory>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "common/file_util.h"
#include "core/drift/feature_profile.h"
#include "core/features_json.h"
#include "core/version_loader.h"
#include "observability/log.h"
#include "runtimes/builtin.h"

namespace forklift {
namespace {

constexpr std::size_t kChunkRows = 1000;
constexpr std::size_t kMaxLineBytes = 1 << 20;
constexpr std::size_t kErrorsShown = 3;

struct ProfileOptions {
  std::string version_dir;
  std::string data;    // JSON lines; default <version_dir>/selftest.jsonl
  std::string output;  // default <version_dir>/profile.json
  std::size_t bins = 10;
  std::size_t max_rows = 1'000'000;
};

// The next line of `in` into `line`, at most kMaxLineBytes + 1 characters of it (a longer line
// is cut there: the caller refuses it). False at the end.
bool read_line(std::istream& in, std::string& line) {
  line.clear();
  char c = 0;
  while (in.get(c)) {
    if (c == '\n') return true;
    line.push_back(c);
    if (line.size() > kMaxLineBytes) return true;
  }
  return !line.empty();
}

// One JSON line as a row: a feature object, or an object whose "features" is one (the
// self-test and prediction event formats). Parsed twice: the DOM finds the feature object, and
// the request path's own parser (parse_feature_object, on-demand) checks it against the schema,
// so a row is accepted exactly when a request with it would be.
Status add_row(const std::string& line, Batch& batch) {
  simdjson::dom::parser dom;
  simdjson::dom::element root;
  if (auto error = dom.parse(line).get(root)) {
    return InvalidArgument(std::string("not JSON: ") + simdjson::error_message(error));
  }
  simdjson::dom::element features = root;
  if (simdjson::dom::element inner; !root["features"].get(inner)) features = inner;
  const simdjson::padded_string text(simdjson::minify(features));
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  if (parser.iterate(text).get(doc)) return InvalidArgument("not JSON");
  simdjson::ondemand::value value;
  if (doc.get_value().get(value)) return InvalidArgument("not a JSON object");
  std::span<Value> row = batch.add_row();
  Status s = parse_feature_object(value, batch.schema(), row);
  return s;
}

int run_profile(const ProfileOptions& o) {
  register_builtin_runtimes();
  std::filesystem::path dir = std::filesystem::absolute(o.version_dir).lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();  // "eta/2/", as tab completion writes it
  const std::string version_name = dir.filename().string();
  char* end = nullptr;
  const long long version = std::strtoll(version_name.c_str(), &end, 10);
  if (version < 1 || end == nullptr || *end != '\0') {
    std::fprintf(stderr, "forklift profile: %s is not a version directory (<model>/<version>)\n",
                 dir.c_str());
    return kExitUsage;
  }
  LoadOutcome outcome = load_version(dir, dir.parent_path().filename().string(), version);
  if (!outcome.loaded) {
    std::fprintf(stderr, "forklift profile: the version does not load: %s\n",
                 outcome.status.message().c_str());
    return kExitFailed;
  }
  const LoadedModel& model = *outcome.loaded;
  const std::filesystem::path data =
      o.data.empty() ? dir / "selftest.jsonl" : std::filesystem::path(o.data);
  std::ifstream in(data);
  if (!in) {
    std::fprintf(stderr, "forklift profile: cannot read %s\n", data.c_str());
    return kExitUsage;
  }
  Batch rows(*model.schema);
  std::vector<Value> outputs;
  std::size_t line_no = 0, refused = 0;
  std::string line;
  Batch chunk(*model.schema);
  const auto predict_chunk = [&]() -> bool {
    if (chunk.rows() == 0) return true;
    std::vector<Value> out;
    if (Status s = model.model->predict(chunk, out); !s.ok() || out.size() != chunk.rows()) {
      std::fprintf(stderr, "forklift profile: the model failed to predict: %s\n",
                   s.message().c_str());
      return false;
    }
    rows.append_rows(chunk);
    outputs.insert(outputs.end(), std::make_move_iterator(out.begin()),
                   std::make_move_iterator(out.end()));
    chunk = Batch(*model.schema);
    return true;
  };
  while (rows.rows() + chunk.rows() < o.max_rows && read_line(in, line)) {
    ++line_no;
    if (line.size() > kMaxLineBytes) {
      // Not JSON lines (a binary file, /dev/zero): stop rather than read it all.
      std::fprintf(stderr,
                   "forklift profile: %s line %zu is longer than 1 MiB; is it JSON lines?\n",
                   data.c_str(), line_no);
      return kExitUsage;
    }
    if (line.empty()) continue;
    Status s = Status::Ok();
    if (s.ok()) {
      Batch one(*model.schema);
      s = add_row(line, one);
      if (s.ok()) chunk.append_rows(one);
    }
    if (!s.ok()) {
      if (++refused <= kErrorsShown) {
        std::fprintf(stderr, "forklift profile: %s line %zu skipped: %s\n", data.c_str(), line_no,
                     s.message().c_str());
      }
      continue;
    }
    if (chunk.rows() >= kChunkRows && !predict_chunk()) return kExitFailed;
    if (line_no % 100000 == 0) std::fprintf(stderr, "  %zu lines read\n", line_no);
  }
  if (!predict_chunk()) return kExitFailed;
  if (rows.rows() == 0) {
    std::fprintf(stderr, "forklift profile: no usable rows in %s\n", data.c_str());
    return kExitFailed;
  }
  const FeatureProfile profile =
      build_feature_profile(rows, outputs, o.bins, data.filename().string());
  const std::filesystem::path output =
      o.output.empty() ? dir / "profile.json" : std::filesystem::path(o.output);
  if (Status s = write_file_atomically(output, feature_profile_to_json(profile)); !s.ok()) {
    std::fprintf(stderr, "forklift profile: %s\n", s.message().c_str());
    return kExitFailed;
  }
  // Readable by a server running as another user, like the version's other files.
  std::error_code ec;
  std::filesystem::permissions(
      output,
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
          std::filesystem::perms::group_read | std::filesystem::perms::others_read,
      ec);
  std::printf("%s: %zu rows, %zu features%s (%zu lines skipped)\n", output.c_str(), rows.rows(),
              profile.features.size(), profile.output ? " and the output" : "", refused);
  return 0;
}

}  // namespace

Command add_profile_command(CLI::App& app) {
  auto o = std::make_shared<ProfileOptions>();
  CLI::App* cmd = app.add_subcommand(
      "profile", "Write a version's profile.json (feature and output distributions) for drift");
  cmd->add_option("version_dir", o->version_dir, "The version directory (<model>/<version>)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--data", o->data,
                  "Reference rows, JSON lines (default: the version's selftest.jsonl)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--output", o->output, "Where to write (default: <version_dir>/profile.json)");
  cmd->add_option("--bins", o->bins, "Quantile bins per numeric feature")
      ->capture_default_str()
      ->check(CLI::Range(2, 100));
  cmd->add_option("--max-rows", o->max_rows, "Rows read at most")
      ->capture_default_str()
      ->check(CLI::Range(1, 100'000'000));
  return {cmd, [o] {
            log::set_min_level(log::Level::kWarn);
            return run_profile(*o);
          }};
}

}  // namespace forklift
