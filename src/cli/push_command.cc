// forklift push VERSION_DIR s3://bucket/prefix: publishes a version directory to an object-store
// repository so that readers never see part of it. Its files go first, each signed with its
// digest; the file manifest (forklift-files.json) last, which is what makes the version exist;
// then the repository index for static-site readers.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <thread>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/remote_repository.h"
#include "common/retry.h"
#include "common/sha256.h"
#include "core/repository.h"
#include "store/file_manifest.h"
#include "store/http_object_store.h"

namespace forklift {
namespace {

struct PushOptions {
  std::string version_dir;
  std::string repository;
  std::string model_id;      // default: the name of VERSION_DIR's parent
  std::int64_t version = 0;  // default: VERSION_DIR's own name
  bool overwrite = false;
  RemoteRepositoryFlags remote;
};

// Transient failures (5xx, throttling, a broken connection) are tried again (common/retry.h).
template <class Fn>
Status with_retries(Fn&& fn) {
  return retry_transient(RetryPolicy{}, fn, [](std::chrono::milliseconds wait) {
    std::this_thread::sleep_for(wait);
    return true;
  });
}

std::string human_bytes(std::uint64_t n) {
  char buf[32];
  if (n >= (1u << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(n) / (1 << 20));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f KB", static_cast<double>(n) / 1024);
  }
  return buf;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "forklift push: %s\n", message.c_str());
  return kExitFailed;
}

int run_push(const PushOptions& o) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::absolute(o.version_dir).lexically_normal();
  const fs::path clean = dir.filename().empty() ? dir.parent_path() : dir;
  const std::string model =
      o.model_id.empty() ? clean.parent_path().filename().string() : o.model_id;
  const std::int64_t version = o.version > 0 ? o.version : parse_version(clean.filename().string());
  if (!is_valid_model_id(model)) {
    return fail("'" + model + "' is not a model id: give one with --model");
  }
  if (version <= 0) {
    return fail("'" + clean.filename().string() +
                "' is not a version number: give one with --version");
  }
  if (!fs::is_regular_file(clean / "model.yaml")) {
    return fail(clean.string() + " has no model.yaml: it is not a version directory");
  }
  auto store = open_object_store(o.repository, o.remote);
  if (!store.ok()) return fail(store.status().message());
  if (!(*store)->writable()) return fail(o.repository + " is read-only: push to its s3:// URL");
  auto manifest = make_file_manifest(clean);
  if (!manifest.ok()) return fail(manifest.status().message());

  const std::string path = model + "/" + std::to_string(version);
  const std::string manifest_key = path + "/" + std::string(kFileManifestName);
  // Versions are immutable: a reader may already serve this one.
  auto existing = get_object(**store, manifest_key, kMaxFileManifestBytes);
  if (existing.ok() && !o.overwrite) {
    return fail(o.repository + " already holds " + path +
                ": versions are immutable (push a new version, or --overwrite)");
  }
  if (!existing.ok() && existing.status().code() != StatusCode::kNotFound) {
    return fail(existing.status().message());
  }

  const std::uint64_t total = manifest->total_bytes();
  std::uint64_t sent = 0;
  std::size_t n = 0;
  for (const auto& f : manifest->files) {
    ++n;
    // Read as it is sent: a file of any size, never whole in memory.
    const std::string file = (clean / f.path).string();
    Status s =
        with_retries([&] { return (*store)->put_file(path + "/" + f.path, file, f.sha256); });
    if (!s.ok()) return fail(s.message());
    sent += f.size;
    std::fprintf(stderr, "[%zu/%zu] %s %s (%s of %s)\n", n, manifest->files.size(), f.path.c_str(),
                 human_bytes(f.size).c_str(), human_bytes(sent).c_str(),
                 human_bytes(total).c_str());
  }
  // Last: from now on the version exists for readers, whole.
  const std::string manifest_text = file_manifest_json(*manifest);
  const std::string manifest_sha = sha256_hex(manifest_text);
  Status s = with_retries([&] { return (*store)->put(manifest_key, manifest_text, manifest_sha); });
  if (!s.ok()) return fail(s.message());

  // The index static-site readers use. Read, changed, written back: two pushes at the same
  // moment may lose one entry (S3 readers list, and are not affected; push again to restore).
  std::vector<RepositoryIndexEntry> index;
  auto current = get_object(**store, std::string(kRepositoryIndexName), kMaxRepositoryIndexBytes);
  if (current.ok()) {
    auto parsed = parse_repository_index(*current);
    if (parsed.ok()) index = std::move(parsed).value();
  } else if (current.status().code() != StatusCode::kNotFound) {
    return fail("the version is published, but the index was not updated: " +
                current.status().message());
  }
  std::erase_if(index, [&](const RepositoryIndexEntry& e) { return e.path == path; });
  index.push_back({path, manifest_sha});
  std::sort(index.begin(), index.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  const std::string index_text = repository_index_json(index);
  s = with_retries([&] {
    return (*store)->put(std::string(kRepositoryIndexName), index_text, sha256_hex(index_text));
  });
  if (!s.ok())
    return fail("the version is published, but the index was not updated: " + s.message());
  std::printf("pushed %s to %s: %zu files, %s\n", path.c_str(), o.repository.c_str(),
              manifest->files.size(), human_bytes(total).c_str());
  return 0;
}

}  // namespace

Command add_push_command(CLI::App& app) {
  auto o = std::make_shared<PushOptions>();
  CLI::App* cmd = app.add_subcommand(
      "push", "Publish a version directory to an object-store repository (s3://bucket/prefix)");
  cmd->add_option("version_dir", o->version_dir, "The version directory, e.g. models/eta/3")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("repository", o->repository, "The repository, s3://bucket[/prefix]")->required();
  cmd->add_option("--model", o->model_id,
                  "Model id (default: the version directory's parent's name)");
  cmd->add_option("--version", o->version, "Version (default: the version directory's name)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--overwrite", o->overwrite,
                "Replace a version already there (readers that loaded it keep the old files)");
  add_store_flags(cmd, o->remote);
  return {cmd, [o] { return run_push(*o); }};
}

}  // namespace forklift
