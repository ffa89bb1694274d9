#include "core/version_loader.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <thread>

#include "common/file_util.h"
#include "core/batching_model.h"
#include "core/deadline_model.h"
#include "runtimes/runtime_registry.h"

namespace forklift {
namespace {

constexpr std::uintmax_t kMaxManifestBytes = 1 << 20;
constexpr std::uintmax_t kMaxSelfTestBytes = 64 << 20;

// The real path of a version's file, when it lies inside the repository, is a regular file and
// holds at most `max_bytes`.
Result<std::filesystem::path> contained_file(const std::filesystem::path& repository,
                                             const std::filesystem::path& path,
                                             std::uintmax_t max_bytes) {
  auto opened = open_regular_within(repository, path);
  if (!opened.ok()) return opened.status();
  struct stat st {};
  if (::fstat(opened->get(), &st) != 0) return NotFound("'" + path.string() + "' cannot be read");
  if (static_cast<std::uintmax_t>(st.st_size) > max_bytes) {
    return FailedPrecondition("'" + path.string() + "' is larger than the limit of " +
                              std::to_string(max_bytes) + " bytes");
  }
  return real_path_within(repository, path);
}

}  // namespace

Result<Manifest> read_manifest(const std::filesystem::path& version_dir) {
  auto file = contained_file(version_dir.parent_path().parent_path(), version_dir / "model.yaml",
                             kMaxManifestBytes);
  if (!file.ok()) return file.status();
  return parse_manifest(*file);
}

LoadOutcome load_version(const std::filesystem::path& version_dir, const std::string& model_id,
                         std::int64_t version) {
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
  const std::filesystem::path repository = version_dir.parent_path().parent_path();
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
  auto contained_artifact = contained_file(repository, version_dir / manifest->artifact,
                                           std::numeric_limits<std::uintmax_t>::max());
  if (!contained_artifact.ok()) {
    return finish(
        FailedPrecondition((version_dir / "model.yaml").string() +
                           ": field 'artifact': " + contained_artifact.status().message()));
  }
  const std::filesystem::path artifact = *contained_artifact;

  auto loaded = std::make_shared<LoadedModel>();
  loaded->model_id = model_id;
  loaded->version = version;
  loaded->manifest = std::move(manifest).value();
  loaded->platform = runtime->platform;
  LoadContext ctx{model_id,
                  version,
                  version_dir,
                  artifact,
                  &loaded->manifest.schema,
                  loaded->manifest.runtime_options};
  try {
    Result<std::unique_ptr<Model>> model = runtime->loader(ctx);
    if (!model.ok()) return finish(model.status());
    loaded->model = std::move(model).value();
  } catch (const std::exception& e) {
    return finish(Internal("runtime '" + runtime->name + "' threw while loading " +
                           artifact.string() + ": " + e.what()));
  }
  if (!loaded->model) return finish(Internal("runtime '" + runtime->name + "' returned no model"));
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
    auto contained = contained_file(repository, selftests, kMaxSelfTestBytes);
    if (!contained.ok()) return finish(FailedPrecondition(contained.status().message()));
    selftests = *contained;
  }
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
    loaded->batcher = batcher.get();
    loaded->model = std::move(batcher);
  }

  outcome.loaded = std::move(loaded);
  return finish(Status::Ok());
}

}  // namespace forklift
