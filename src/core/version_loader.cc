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

namespace forklift {
namespace {

constexpr std::uintmax_t kMaxSelfTestBytes = 64 << 20;
// The largest artifact a version may have. Most runtimes read it whole into memory (and a sparse
// file claims any size on no disk): larger ones are refused rather than left to the OOM killer.
constexpr std::uintmax_t kMaxArtifactBytes = std::uintmax_t{2} << 30;

}  // namespace

LoadOutcome load_version(const std::filesystem::path& version_dir, const std::string& model_id,
                         std::int64_t version, const std::function<void()>& on_selftesting) {
  const auto start = std::chrono::steady_clock::now();
  LoadOutcome outcome;
  const auto finish = [&](Status status) {
    outcome.status = std::move(status);
    outcome.load_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (outcome.loaded) outcome.loaded->load_seconds = outcome.load_seconds;
    return std::move(outcome);
  };

  // Every file a version names must resolve (symlinks followed) inside the repository, be a
  // regular file and be of a bounded size: a link to /etc/shadow or a FIFO in place of
  // model.yaml costs this version only, and no error quotes what such a file holds.
  const std::filesystem::path repository = repository_of(version_dir);
  Result<Manifest> manifest = read_manifest(version_dir);
  if (!manifest.ok()) return finish(manifest.status());
  const RuntimeInfo* runtime = find_runtime(manifest->runtime);
  if (runtime == nullptr) {
    std::string known;
    for (const auto& n : runtime_names()) known += (known.empty() ? "" : ", ") + n;
    return finish(InvalidArgument((version_dir / "model.yaml").string() + ": field 'runtime': '" +
                                  manifest->runtime +
                                  "' is not a registered runtime (known: " + known + ")"));
  }
  auto contained_artifact =
      open_regular_within(repository, version_dir / manifest->artifact, kMaxArtifactBytes);
  if (!contained_artifact.ok()) {
    return finish(
        FailedPrecondition((version_dir / "model.yaml").string() +
                           ": field 'artifact': " + contained_artifact.status().message()));
  }
  const std::filesystem::path artifact = contained_artifact->real_path;

  auto loaded = std::make_shared<LoadedModel>();
  loaded->model_id = model_id;
  loaded->version = version;
  loaded->manifest = std::move(manifest).value();
  loaded->platform = runtime->platform;
  // Requests' rows and prediction events point at this copy, which outlives the version for as
  // long as an event that needs it is queued (event_log.h).
  loaded->schema = std::make_shared<const Schema>(loaded->manifest.schema);
  LoadContext ctx{model_id,
                  version,
                  version_dir,
                  artifact,
                  &loaded->manifest.schema,
                  loaded->manifest.runtime_options,
                  std::chrono::milliseconds(loaded->manifest.timeout_ms)};
  try {
    Result<std::unique_ptr<Model>> model = runtime->loader(ctx);
    if (!model.ok()) return finish(model.status());
    loaded->model = std::move(model).value();
  } catch (const std::exception& e) {
    return finish(Internal("runtime '" + runtime->name + "' threw while loading " +
                           artifact.string() + ": " + e.what()));
  }
  if (!loaded->model) return finish(Internal("runtime '" + runtime->name + "' returned no model"));
  // The decorators, innermost first: the guard (so every layer above gets a Status and one output
  // per row), the deadline (so a slow call is abandoned before it holds up a batch), then, after
  // the self-tests, batching.
  loaded->model = guarded(std::move(loaded->model));
  if (loaded->manifest.timeout_ms > 0) {
    // As many calls at once as the serving threads can make (at least 4).
    const std::size_t workers = std::max(4u, std::thread::hardware_concurrency());
    loaded->model = with_deadline(std::shared_ptr<const Model>(std::move(loaded->model)),
                                  loaded->manifest.schema,
                                  std::chrono::milliseconds(loaded->manifest.timeout_ms), workers);
  }
  std::filesystem::path selftests = version_dir / "selftest.jsonl";
  std::error_code ec;
  if (std::filesystem::symlink_status(selftests, ec).type() !=
      std::filesystem::file_type::not_found) {
    auto contained = open_regular_within(repository, selftests, kMaxSelfTestBytes);
    if (!contained.ok()) return finish(FailedPrecondition(contained.status().message()));
    selftests = contained->real_path;
  }
  if (on_selftesting) on_selftesting();
  SelfTestReport report = run_selftests(*loaded->model, loaded->manifest.schema, selftests);
  outcome.selftest = report;
  if (!report.ok()) return finish(FailedPrecondition("self-tests failed: " + report.summary()));
  loaded->selftest = std::move(report);
  // Batching is added after the self-tests: run one at a time, each would wait out the queue
  // delay. (The batching layer itself does not change a prediction; its tests prove that.)
  if (const Manifest::Batching& b = loaded->manifest.batching; b.max_batch_size > 0) {
    auto batcher = std::make_unique<BatchingModel>(
        std::shared_ptr<const Model>(std::move(loaded->model)),
        BatchingOptions{b.max_batch_size, std::chrono::microseconds(b.max_queue_delay_us),
                        b.threads, b.max_queue_size});
    loaded->batcher = batcher.get();  // for its metrics, once the registry attaches them
    loaded->model = std::move(batcher);
  }

  outcome.loaded = std::move(loaded);
  return finish(Status::Ok());
}

}  // namespace forklift
