#include "training/online_snapshot.h"

#include <simdjson.h>

#include "common/file_util.h"
#include "common/json_writer.h"
#include "core/control_state.h"
#include "core/features_json.h"
#include "training/staged_version.h"

namespace forklift::training {
namespace {

constexpr std::uintmax_t kMaxFileBytes = 256u << 20;

JobOutcome stopped(JobResult result, std::string reason, const LogFn& log) {
  if (log) log(std::string(to_string(result)) + ": " + reason);
  JobOutcome out;
  out.result = result;
  out.reason = std::move(reason);
  return out;
}

// The parent's self-test lines with `model`'s outputs as their expectations: the same inputs,
// the snapshot's answers. Lines that do not parse are left out.
Result<std::string> retarget_selftests(const std::string& text, const LoadedModel& model) {
  std::string out;
  std::size_t start = 0;
  simdjson::dom::parser dom;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    simdjson::dom::element root;
    simdjson::dom::element features;
    if (line.empty() || dom.parse(line).get(root) || root["features"].get(features)) continue;
    const std::string features_json = simdjson::minify(features);
    const simdjson::padded_string padded(features_json);
    simdjson::ondemand::parser parser;
    simdjson::ondemand::document doc;
    simdjson::ondemand::value value;
    if (parser.iterate(padded).get(doc) || doc.get_value().get(value)) continue;
    Batch batch(*model.schema);
    if (!parse_feature_object(value, *model.schema, batch.add_row()).ok()) continue;
    std::vector<Value> outputs;
    if (Status s = model.model->predict(batch, outputs); !s.ok() || outputs.size() != 1) {
      return Internal("the snapshot does not predict its self-test rows: " + s.message());
    }
    std::string_view name;
    out += "{";
    if (!root["name"].get_string().get(name)) {
      out += "\"name\":";
      json::append_string(out, name);
      out += ",";
    }
    out += "\"features\":" + features_json + ",\"expected\":";
    json::append_value(out, outputs[0]);
    out += "}\n";
  }
  if (out.empty()) return FailedPrecondition("the parent version has no usable self-test rows");
  return out;
}

}  // namespace

JobOutcome run_snapshot_job(const SnapshotRequest& request, const ProgressFn& progress,
                            const LogFn& log, const std::atomic<bool>* cancel) {
  const LoadedModel& parent = *request.version;
  const std::string started = now_iso8601();
  const auto stage = [&](const char* name) {
    Progress p;
    p.stage = name;
    if (progress) progress(p);
  };
  if (parent.learner == nullptr) {
    return stopped(JobResult::kFailed,
                   "version " + std::to_string(parent.version) + " of " + parent.model_id +
                       " does not learn online",
                   log);
  }
  stage("snapshotting");
  const std::uint64_t updates = parent.learner->updates();
  auto artifact = parent.learner->snapshot();
  if (!artifact.ok()) return stopped(JobResult::kFailed, artifact.status().message(), log);
  const std::filesystem::path model_dir = request.repository / parent.model_id;
  const std::filesystem::path parent_dir = model_dir / std::to_string(parent.version);
  auto staged = StagedVersion::create(model_dir, request.job_id);
  if (!staged.ok()) return stopped(JobResult::kFailed, staged.status().message(), log);
  stage("writing");
  // The parent's files but the ones the snapshot replaces; its self-test inputs are kept.
  if (Status s = staged->copy_files_from(
          parent_dir, request.repository,
          {parent.manifest.artifact, "selftest.jsonl", "lineage.json"}, kMaxFileBytes);
      !s.ok()) {
    return stopped(JobResult::kFailed, s.message(), log);
  }
  std::string selftests;
  if (auto file =
          open_regular_within(request.repository, parent_dir / "selftest.jsonl", kMaxFileBytes);
      file.ok()) {
    selftests = read_up_to(file->fd.get(), static_cast<std::size_t>(file->size));
  }
  if (Status s = staged->write(parent.manifest.artifact, *artifact); !s.ok()) {
    return stopped(JobResult::kFailed, s.message(), log);
  }
  auto snapshot = load_untested_version(staged->dir(), parent.model_id, parent.version + 1);
  if (!snapshot.ok()) return stopped(JobResult::kFailed, snapshot.status().message(), log);
  auto lines = retarget_selftests(selftests, **snapshot);
  if (!lines.ok()) return stopped(JobResult::kFailed, lines.status().message(), log);
  if (Status s = staged->write("selftest.jsonl", *lines); !s.ok()) {
    return stopped(JobResult::kFailed, s.message(), log);
  }
  std::string lineage = "{\"format\":1,\"model_id\":";
  json::append_string(lineage, parent.model_id);
  lineage += ",\"job_id\":";
  json::append_string(lineage, request.job_id);
  lineage += ",\"parent_version\":" + std::to_string(parent.version);
  lineage += ",\"trainer\":\"online\",\"mode\":\"snapshot\",\"updates\":" + std::to_string(updates);
  lineage += ",\"reason\":";
  json::append_string(lineage, request.reason);
  lineage += ",\"code_version\":";
  json::append_string(lineage, request.code_version);
  lineage += ",\"started\":";
  json::append_string(lineage, started);
  lineage += ",\"finished\":";
  json::append_string(lineage, now_iso8601());
  lineage += "}\n";
  if (Status s = staged->write("lineage.json", lineage); !s.ok()) {
    return stopped(JobResult::kFailed, s.message(), log);
  }
  stage("self-testing");
  LoadOutcome check = load_version(staged->dir(), parent.model_id, parent.version + 1);
  if (!check.loaded) {
    return stopped(
        JobResult::kFailed,
        "the snapshot does not load as the server would load it: " + check.status.message(), log);
  }
  if (cancel && cancel->load()) return stopped(JobResult::kCancelled, "cancelled", log);
  auto version = staged->publish();
  if (!version.ok()) return stopped(JobResult::kFailed, version.status().message(), log);
  JobOutcome out;
  out.result = JobResult::kPublished;
  out.version = *version;
  out.parent = parent.version;
  out.reason = "published version " + std::to_string(*version) + " of " + parent.model_id +
               ": version " + std::to_string(parent.version) + " after " + std::to_string(updates) +
               " updates";
  out.lineage_json = lineage;
  if (log) log(out.reason);
  stage("published");
  return out;
}

}  // namespace forklift::training
