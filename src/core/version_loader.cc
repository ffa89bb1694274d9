#include "core/version_loader.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/file_util.h"
#include "core/batching_model.h"
#include "core/deadline_model.h"
#include "core/guarded_model.h"
#include "core/repository.h"
#include "core/runtime_table.h"
#include "observability/log.h"

namespace forklift {
namespace {

constexpr std::uintmax_t kMaxSelfTestBytes = 64 << 20;
// The largest artifact a version may have. Most runtimes read it whole into memory (and a sparse
// file claims any size on no disk): larger ones are refused rather than left to the OOM killer.
constexpr std::uintmax_t kMaxArtifactBytes = std::uintmax_t{2} << 30;

// The version's manifest, runtime and artifact. Every file a version names must resolve
// (symlinks followed) inside the repository, be a regular file and be of a bounded size: a link to
// /etc/shadow or a FIFO in place of model.yaml costs this version only, and no error quotes what
// such a file holds.
struct VersionFiles {
  Manifest manifest;
  const RuntimeInfo* runtime = nullptr;
  std::filesystem::path artifact;  // its real path
};

Result<VersionFiles> open_version(const std::filesystem::path& version_dir) {
  Result<Manifest> manifest = read_manifest(version_dir);
  if (!manifest.ok()) return manifest.status();
  const RuntimeInfo* runtime = find_runtime(manifest->runtime);
  if (runtime == nullptr) {
    std::string known;
    for (const auto& n : runtime_names()) known += (known.empty() ? "" : ", ") + n;
    return InvalidArgument((version_dir / "model.yaml").string() + ": field 'runtime': '" +
                           manifest->runtime + "' is not a registered runtime (known: " + known +
                           ")");
  }
  auto artifact = open_regular_within(repository_of(version_dir), version_dir / manifest->artifact,
                                      kMaxArtifactBytes);
  if (!artifact.ok()) {
    return FailedPrecondition((version_dir / "model.yaml").string() +
                              ": field 'artifact': " + artifact.status().message());
  }
  return VersionFiles{std::move(manifest).value(), runtime, artifact->real_path};
}

// selftest.jsonl, contained like the other files; a missing one is run_selftests' to report.
Result<std::filesystem::path> selftest_file(const std::filesystem::path& version_dir) {
  std::filesystem::path selftests = version_dir / "selftest.jsonl";
  std::error_code ec;
  if (std::filesystem::symlink_status(selftests, ec).type() ==
      std::filesystem::file_type::not_found) {
    return selftests;
  }
  auto contained = open_regular_within(repository_of(version_dir), selftests, kMaxSelfTestBytes);
  if (!contained.ok()) return FailedPrecondition(contained.status().message());
  return contained->real_path;
}

// The runtime's model, in the decorators that go on before the self-tests, innermost first: the
// guard (so every layer above gets a Status and one output per row), then the deadline (so a
// slow call is abandoned before it holds up a batch).
Status load_runtime_model(LoadedModel& loaded, const RuntimeInfo& runtime,
                          const std::filesystem::path& version_dir,
                          const std::filesystem::path& artifact) {
  // The self-tests' inputs, for a runtime that checks one engine against another; a file that
  // cannot be read is left to the self-tests to report.
  Batch samples(loaded.manifest.schema);
  if (auto file = selftest_file(version_dir); file.ok()) {
    const Status read = read_selftest_inputs(*file, samples);  // adds nothing when it fails
    (void)read;
  }
  const LoadContext ctx{loaded.model_id,
                        loaded.version,
                        version_dir,
                        artifact,
                        &loaded.manifest.schema,
                        loaded.manifest.runtime_options,
                        std::chrono::milliseconds(loaded.manifest.timeout_ms),
                        loaded.manifest.engine,
                        &samples};
  try {
    Result<std::unique_ptr<Model>> model = runtime.loader(ctx);
    if (!model.ok()) return model.status();
    loaded.model = std::move(model).value();
  } catch (const std::exception& e) {
    return Internal("runtime '" + runtime.name + "' threw while loading " + artifact.string() +
                    ": " + e.what());
  }
  if (!loaded.model) return Internal("runtime '" + runtime.name + "' returned no model");
  loaded.engine = loaded.model->engine();
  if (loaded.engine.name == "library" && loaded.manifest.engine == "auto") {
    log::warn("native_engine_refused",
              {{"model_id", loaded.model_id},
               {"version", loaded.version},
               {"reason", loaded.engine.note},
               {"effect", "this version is served by the model's library (e.g. XGBoost)"}});
  }
  if (loaded.model->learns()) loaded.learner = loaded.model.get();  // the decorators keep it
  loaded.runtime_model = loaded.model.get();
  loaded.model = guarded(std::move(loaded.model));
  if (loaded.manifest.timeout_ms > 0) {
    // As many calls at once as the serving threads can make (at least 4).
    const std::size_t workers = std::max(4u, std::thread::hardware_concurrency());
    loaded.model =
        with_deadline(std::shared_ptr<const Model>(std::move(loaded.model)), loaded.manifest.schema,
                      std::chrono::milliseconds(loaded.manifest.timeout_ms), workers);
  }
  return Status::Ok();
}

// Batching goes on after the self-tests: run one at a time, each would wait out the queue delay.
// (The batching layer itself does not change a prediction; its tests prove that.)
void add_batching(LoadedModel& loaded) {
  const Manifest::Batching& b = loaded.manifest.batching;
  if (b.max_batch_size == 0) return;
  auto batcher = std::make_unique<BatchingModel>(
      std::shared_ptr<const Model>(std::move(loaded.model)),
      BatchingOptions{b.max_batch_size, std::chrono::microseconds(b.max_queue_delay_us), b.threads,
                      b.max_queue_size});
  loaded.batcher = batcher.get();  // for its metrics, once the version manager attaches them
  loaded.model = std::move(batcher);
}

// Drift figures cover the last hour of requests.
constexpr std::int64_t kDriftWindowMs = 3600 * 1000;

// profile.json, when the version ships one: drift is then watched. A profile that cannot be read
// costs only the drift figures, never the version (it is logged).
void attach_profile(LoadedModel& loaded, const std::filesystem::path& version_dir) {
  const std::filesystem::path file = version_dir / "profile.json";
  std::error_code ec;
  if (std::filesystem::symlink_status(file, ec).type() == std::filesystem::file_type::not_found) {
    return;
  }
  auto opened = open_regular_within(repository_of(version_dir), file, kMaxProfileBytes);
  Result<FeatureProfile> profile =
      opened.ok() ? parse_feature_profile(read_up_to(opened->fd.get(), opened->size))
                  : Result<FeatureProfile>(opened.status());
  if (!profile.ok()) {
    log::warn("profile_unreadable", {{"model_id", loaded.model_id},
                                     {"version", loaded.version},
                                     {"reason", profile.status().message()},
                                     {"effect", "drift is not watched for this version"}});
    return;
  }
  loaded.drift = std::make_shared<DriftWindow>(
      std::make_shared<const FeatureProfile>(std::move(profile).value()), *loaded.schema,
      kDriftWindowMs);
  for (const std::string& name : loaded.drift->skipped()) {
    log::warn("profile_feature_skipped",
              {{"model_id", loaded.model_id},
               {"version", loaded.version},
               {"feature", name},
               {"reason", "profile.json bins it as the wrong kind for its type"}});
  }
}

}  // namespace

Result<std::shared_ptr<LoadedModel>> load_untested_version(const std::filesystem::path& version_dir,
                                                           const std::string& model_id,
                                                           std::int64_t version) {
  Result<VersionFiles> files = open_version(version_dir);
  if (!files.ok()) return files.status();
  auto loaded = std::make_shared<LoadedModel>();
  loaded->model_id = model_id;
  loaded->version = version;
  loaded->manifest = std::move(files->manifest);
  loaded->platform = files->runtime->platform;
  // Requests' rows and prediction events point at this copy, which outlives the version for as
  // long as an event that needs it is queued (event_log.h).
  loaded->schema = std::make_shared<const Schema>(loaded->manifest.schema);
  if (Status s = load_runtime_model(*loaded, *files->runtime, version_dir, files->artifact);
      !s.ok()) {
    return s;
  }
  return loaded;
}

LoadOutcome load_version(const std::filesystem::path& version_dir, const std::string& model_id,
                         std::int64_t version, const std::function<void()>& on_selftesting) {
  const auto start = std::chrono::steady_clock::now();
  LoadOutcome outcome;
  const auto finish = [&](Status status) {
    outcome.status = std::move(status);
    outcome.load_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return std::move(outcome);
  };
  Result<std::shared_ptr<LoadedModel>> runtime_model =
      load_untested_version(version_dir, model_id, version);
  if (!runtime_model.ok()) return finish(runtime_model.status());
  std::shared_ptr<LoadedModel> loaded = std::move(runtime_model).value();
  const Result<std::filesystem::path> selftests = selftest_file(version_dir);
  if (!selftests.ok()) return finish(selftests.status());
  if (on_selftesting) on_selftesting();
  SelfTestReport report = run_selftests(*loaded->model, loaded->manifest.schema, *selftests);
  outcome.selftest = report;
  if (!report.ok()) return finish(FailedPrecondition("self-tests failed: " + report.summary()));
  add_batching(*loaded);
  attach_profile(*loaded, version_dir);
  outcome.loaded = std::move(loaded);
  return finish(Status::Ok());
}

}  // namespace forklift
