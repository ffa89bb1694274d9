#include "store/repository_mirror.h"

#include <fcntl.h>
#include <simdjson.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "common/file_util.h"
#include "common/json_writer.h"
#include "common/retry.h"
#include "common/sha256.h"
#include "core/repository.h"
#include "observability/log.h"

namespace forklift {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kStateFile = ".forklift-mirror.json";

// "<model>/<version>/forklift-files.json" -> "<model>/<version>", or "" for any other key.
std::string version_path_of(std::string_view key) {
  if (!key.ends_with(kFileManifestName)) return "";
  key.remove_suffix(kFileManifestName.size());
  if (!key.ends_with('/')) return "";
  key.remove_suffix(1);
  const auto slash = key.find('/');
  if (slash == std::string_view::npos) return "";
  const std::string_view model = key.substr(0, slash);
  const std::string_view version = key.substr(slash + 1);
  if (!is_valid_model_id(model) || parse_version(version) < 0) return "";
  return std::string(key);
}

}  // namespace

fs::path mirror_dir_for(const fs::path& cache_root, const std::string& url) {
  return cache_root / "mirrors" / sha256_hex(url).substr(0, 16);
}

RepositoryMirror::RepositoryMirror(std::unique_ptr<ObjectStore> store, fs::path mirror_dir,
                                   ContentCache cache, MirrorOptions options,
                                   RepositoryStats* stats)
    : store_(std::move(store)),
      mirror_(std::move(mirror_dir)),
      cache_(std::move(cache)),
      options_(options),
      stats_(stats) {
  store_->set_cancel(&stopping_);
  std::error_code ec;
  fs::create_directories(mirror_, ec);
  load_state();
}

void RepositoryMirror::stop() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
}

RepositoryMirror::~RepositoryMirror() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

Status RepositoryMirror::claim() {
  const fs::path lock = mirror_ / ".lock";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return FailedPrecondition("cannot open " + lock.string());
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    return FailedPrecondition("another forklift mirrors this repository into " + mirror_.string() +
                              ": give each server its own --repository-cache (or volume)");
  }
  // Leftovers of a poll that was interrupted (a crash mid-rename) are not versions; removed only
  // now that no other process can be writing them.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(mirror_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with(".staging-") || name.starts_with(".trash-")) fs::remove_all(e.path(), ec);
  }
  // So is a version directory the state file does not know (left by a run whose state file was
  // lost): once claimed, only this process writes here, so this is needed once, not per poll.
  if (auto on_disk = scan_repository(mirror_); on_disk.ok()) {
    for (const auto& model : *on_disk) {
      for (const auto v : model.versions) {
        const std::string path = model.model_id + "/" + std::to_string(v);
        if (!known_.contains(path)) fs::remove_all(mirror_ / path, ec);
      }
    }
  }
  return Status::Ok();
}

bool RepositoryMirror::pause(std::chrono::milliseconds wait) {
  std::unique_lock lock(stop_mu_);
  return !stop_cv_.wait_for(lock, wait, [this] { return stopping_.load(); });
}

template <class Fn>
Status RepositoryMirror::with_retries(Fn&& fn) {
  return retry_transient(
      RetryPolicy{options_.attempts, options_.backoff, std::chrono::milliseconds(5000)}, fn,
      [this](std::chrono::milliseconds wait) { return pause(wait); },
      [this] {
        if (stats_ != nullptr) ++stats_->retries;
      });
}

Status RepositoryMirror::fetch_missing(const std::string& path, const FileManifest& manifest) {
  // One download per digest: identical files within the version come once.
  std::vector<const ManifestFile*> jobs;
  std::set<std::string> seen;
  for (const auto& f : manifest.files) {
    if (!seen.insert(f.sha256).second) continue;
    if (cache_.has(f)) {
      if (stats_ != nullptr) ++stats_->files_from_cache;
      continue;
    }
    jobs.push_back(&f);
  }
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;
  auto worker = [&] {
    for (std::size_t i = next++; i < jobs.size() && !failed && !stopping_; i = next++) {
      const ManifestFile& f = *jobs[i];
      const std::string key = path + "/" + f.path;
      Status s = with_retries([&] {
        return cache_.add(f, [&](const ObjectSink& sink) {
          return store_->get(key, f.size, [&](std::string_view piece) {
            if (stats_ != nullptr) stats_->downloaded_bytes += piece.size();
            return sink(piece);
          });
        });
      });
      if (s.ok()) {
        if (stats_ != nullptr) ++stats_->files_downloaded;
        continue;
      }
      std::lock_guard lock(mu);
      if (!failed.exchange(true)) first_error = std::move(s);
    }
  };
  const std::size_t threads =
      std::min(jobs.size(), std::max<std::size_t>(1, options_.download_threads));
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  if (threads > 0) worker();
  for (auto& t : pool) t.join();
  if (first_error.ok() && stopping_) return Unavailable("stopped");
  return first_error;
}

Result<RepositoryMirror::Known> RepositoryMirror::mirror_version(const std::string& path,
                                                                 const std::string& etag) {
  std::string text;
  Status got = with_retries([&] {
    text.clear();
    return store_->get(path + "/" + std::string(kFileManifestName), kMaxFileManifestBytes,
                       [&](std::string_view piece) {
                         text.append(piece);
                         return Status::Ok();
                       });
  });
  if (!got.ok()) return got;
  const std::string files_sha256 = sha256_hex(text);
  if (store_->etag_is_manifest_digest() && files_sha256 != etag) {
    return FailedPrecondition("its manifest's SHA-256 is not the one the repository index gives");
  }
  const auto known = known_.find(path);
  if (known != known_.end() && fs::is_directory(mirror_ / path)) {
    if (known->second.files_sha256 == files_sha256) {
      Known same = known->second;
      same.etag = etag;  // the same manifest written again
      return same;
    }
    // Versions are immutable: servers that have it would serve one thing and servers that
    // mirror it now another. The mirrored copy stays.
    return FailedPrecondition(
        "its manifest changed in the store after it was mirrored; versions are immutable, so the "
        "mirrored copy keeps serving (publish a new version instead)");
  }
  auto manifest = parse_file_manifest(text, options_.max_version_bytes);
  if (!manifest.ok()) return manifest.status();
  if (Status s = fetch_missing(path, *manifest); !s.ok()) return s;

  // Built beside the mirror's versions, then renamed into place: the registry never sees a
  // version with some of its files.
  const auto slash = path.find('/');
  const std::string model = path.substr(0, slash);
  const std::string version = path.substr(slash + 1);
  const fs::path staging = mirror_ / (".staging-" + model + "-" + version);
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) return Unavailable("cannot write the mirror " + mirror_.string() + ": " + ec.message());
  Known entry{etag, files_sha256, {}};
  for (const auto& f : manifest->files) {
    if (Status s = cache_.place(f, staging / f.path); !s.ok()) {
      fs::remove_all(staging, ec);
      return s;
    }
    entry.digests.push_back(f.sha256);
  }
  if (Status s = write_file_atomically(staging / std::string(kFileManifestName), text); !s.ok()) {
    fs::remove_all(staging, ec);
    return s;
  }
  const fs::path target = mirror_ / model / version;
  fs::create_directories(target.parent_path(), ec);
  if (fs::exists(target, ec)) {
    const fs::path trash = mirror_ / (".trash-" + model + "-" + version);
    fs::remove_all(trash, ec);
    fs::rename(target, trash, ec);
    fs::rename(staging, target, ec);
    std::error_code ignored;
    fs::remove_all(trash, ignored);
  } else {
    fs::rename(staging, target, ec);
  }
  if (ec) {
    fs::remove_all(staging, ec);
    return Unavailable("cannot write the mirror " + mirror_.string());
  }
  return entry;
}

void RepositoryMirror::remove_version(const std::string& path) {
  std::error_code ec;
  fs::remove_all(mirror_ / path, ec);
  const fs::path model_dir = (mirror_ / path).parent_path();
  if (fs::is_empty(model_dir, ec)) fs::remove(model_dir, ec);
  known_.erase(path);
}

Result<SyncReport> RepositoryMirror::sync() {
  std::lock_guard sync_lock(sync_mu_);
  std::vector<ObjectInfo> listing;
  Status listed = with_retries([&] {
    auto l = store_->list_manifests(options_.max_keys);
    if (!l.ok()) return l.status();
    listing = std::move(l).value();
    return Status::Ok();
  });
  if (!listed.ok()) {
    if (stats_ != nullptr) ++stats_->syncs_failed;
    return listed;
  }
  std::map<std::string, std::string> remote;  // path -> manifest ETag
  for (const auto& o : listing) {
    const std::string path = version_path_of(o.key);
    if (!path.empty()) remote[path] = o.etag;
  }
  SyncReport report;
  for (const auto& [path, etag] : remote) {
    const auto known = known_.find(path);
    if (known != known_.end() && known->second.etag == etag && !etag.empty() &&
        fs::is_directory(mirror_ / path)) {
      ++report.unchanged;
      continue;
    }
    const auto rejected = rejected_.find(path);
    if (rejected != rejected_.end() && rejected->second.etag == etag &&
        std::chrono::steady_clock::now() < rejected->second.next_try) {
      ++report.rejected;  // the same manifest was refused a moment ago
      continue;
    }
    auto mirrored = mirror_version(path, etag);
    if (mirrored.ok()) {
      const bool same_files =
          known != known_.end() && known->second.files_sha256 == mirrored->files_sha256;
      known_[path] = std::move(mirrored).value();
      rejected_.erase(path);
      if (stats_ != nullptr) stats_->clear_rejected(path);
      if (same_files) {
        ++report.unchanged;
      } else {
        ++report.added;
        log::info("repository_version_mirrored", {{"version", path}, {"from", store_->url()}});
      }
      continue;
    }
    if (stopping_) break;
    Status why = mirrored.status();
    if (why.code() == StatusCode::kNotFound) {
      // Deleted since the listing was read (S3), or listed and missing (a static site's index).
      why = NotFound("its manifest is listed but missing: " + why.message());
    }
    ++report.rejected;
    // Tried again after a wait that doubles with each failure, whatever failed: a check, the
    // store mid-download, or the local disk.
    Rejection& r = rejected_[path];
    r.failures = r.etag == etag ? r.failures + 1 : 1;
    r.etag = etag;
    const std::chrono::seconds retry_after(std::min(600, 1 << std::min(r.failures - 1, 10)));
    r.next_try = std::chrono::steady_clock::now() + retry_after;
    if (stats_ != nullptr) stats_->set_rejected(path, why.message());
    log::warn("repository_version_rejected",
              {{"version", path},
               {"from", store_->url()},
               {"reason", why.message()},
               {"retry_in_seconds", static_cast<std::int64_t>(retry_after.count())}});
  }
  if (stopping_) return Unavailable("stopped");
  // Versions no longer in the store leave the mirror (and the registry unloads them).
  for (auto it = known_.begin(); it != known_.end();) {
    const std::string path = it->first;
    ++it;
    if (remote.contains(path)) continue;
    remove_version(path);
    ++report.removed;
    log::info("repository_version_removed", {{"version", path}, {"from", store_->url()}});
  }
  for (auto it = rejected_.begin(); it != rejected_.end();) {
    if (remote.contains(it->first)) {
      ++it;
    } else {
      if (stats_ != nullptr) stats_->clear_rejected(it->first);
      it = rejected_.erase(it);
    }
  }
  if (report.changed()) {
    save_state();
    std::set<std::string> keep;
    for (const auto& [path, k] : known_) keep.insert(k.digests.begin(), k.digests.end());
    cache_.collect(keep);
  }
  if (stats_ != nullptr) {
    ++stats_->syncs_ok;
    stats_->versions_mirrored = static_cast<std::int64_t>(known_.size());
    stats_->last_success_unix =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
  return report;
}

void RepositoryMirror::save_state() const {
  std::string out = "{\"versions\":{";
  bool first = true;
  for (const auto& [path, k] : known_) {
    if (!first) out += ",";
    first = false;
    out += "\n  ";
    json::append_string(out, path);
    out += ":{\"etag\":";
    json::append_string(out, k.etag);
    out += ",\"files_sha256\":\"" + k.files_sha256 + "\",\"digests\":[";
    for (std::size_t i = 0; i < k.digests.size(); ++i) {
      out += (i ? ",\"" : "\"") + k.digests[i] + "\"";
    }
    out += "]}";
  }
  out += "\n}}\n";
  const Status s = write_file_atomically(mirror_ / std::string(kStateFile), out);
  if (!s.ok()) log::warn("repository_mirror_state_unwritable", {{"reason", s.message()}});
}

// What the last run mirrored, so a restart re-downloads and reloads nothing unchanged. A state
// file that cannot be read costs a fresh mirror (blobs still come from the cache).
void RepositoryMirror::load_state() {
  std::ifstream in(mirror_ / std::string(kStateFile), std::ios::binary);
  if (!in) return;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  simdjson::dom::parser parser;
  simdjson::dom::object versions;
  const simdjson::padded_string padded(text);
  simdjson::dom::element root;
  if (parser.parse(padded).get(root) || root["versions"].get_object().get(versions)) return;
  for (auto [key, value] : versions) {
    const std::string path(key);
    if (version_path_of(path + "/" + std::string(kFileManifestName)).empty()) continue;
    if (!fs::is_directory(mirror_ / path)) continue;
    Known k;
    std::string_view etag;
    std::string_view sha;
    simdjson::dom::array digests;
    if (value["etag"].get_string().get(etag) || value["files_sha256"].get_string().get(sha) ||
        value["digests"].get_array().get(digests) || !is_sha256_hex(sha)) {
      continue;
    }
    k.etag = std::string(etag);
    k.files_sha256 = std::string(sha);
    for (auto d : digests) {
      std::string_view digest;
      if (!d.get_string().get(digest) && is_sha256_hex(digest)) k.digests.emplace_back(digest);
    }
    known_[path] = std::move(k);
  }
}

}  // namespace forklift
