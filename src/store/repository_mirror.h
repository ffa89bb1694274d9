// A remote model repository (S3, static HTTP) mirrored into a local directory that the registry
// reads like any other: <mirror>/<model>/<version>/… Each poll lists the remote version
// manifests; one whose ETag is unchanged costs nothing, a new or changed one has its files
// fetched (only those the content cache lacks, several at once, with retries) and checked
// against the manifest's sizes and digests, then appears in the mirror whole, by one rename. A
// version that fails any check is rejected with its reason and the rest keep serving; a version
// gone from the store leaves the mirror.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "forklift/status.h"
#include "observability/repository_stats.h"
#include "store/content_cache.h"
#include "store/object_store.h"

namespace forklift {

struct MirrorOptions {
  std::size_t download_threads = 4;
  int attempts = 4;  // per request, for transient failures (5xx, throttling, broken transfers)
  std::chrono::milliseconds backoff{200};  // doubled per attempt, with full jitter, up to 5 s
  std::uint64_t max_version_bytes = 16ull << 30;
  std::size_t max_keys = 200'000;
};

struct SyncReport {
  int added = 0;      // versions mirrored for the first time, or changed
  int removed = 0;    // versions gone from the store
  int unchanged = 0;  // same ETag (or same manifest) as the last poll
  int rejected = 0;   // incomplete, a digest mismatch, a bad manifest
  bool changed() const { return added > 0 || removed > 0; }
};

class RepositoryMirror {
 public:
  RepositoryMirror(std::unique_ptr<ObjectStore> store, std::filesystem::path mirror_dir,
                   ContentCache cache, MirrorOptions options, RepositoryStats* stats);

  // One poll; polls from several threads take turns. An error means the listing could not be
  // read: nothing in the mirror changed.
  Result<SyncReport> sync();

  ~RepositoryMirror();
  RepositoryMirror(const RepositoryMirror&) = delete;
  RepositoryMirror& operator=(const RepositoryMirror&) = delete;

  // Takes the mirror directory for this process (an exclusive lock on <mirror>/.lock): two
  // servers writing one mirror would remove each other's versions. FailedPrecondition if
  // another process holds it.
  Status claim();

  // Whether an earlier run left versions in the mirror (then they can serve before a poll).
  bool has_versions() const { return !known_.empty(); }

  // Stops a poll in progress as soon as it can (its requests are cancelled): shutdown.
  void stop();
  // Waits `wait`, or less if stop() is called; false once stopped.
  bool pause(std::chrono::milliseconds wait);

  const std::filesystem::path& mirror_dir() const { return mirror_; }
  const ObjectStore& store() const { return *store_; }

 private:
  struct Known {
    std::string etag;
    std::string files_sha256;
    std::vector<std::string> digests;  // of its files, kept in the cache
  };
  // Fetches, checks and places one version; returns its Known entry.
  Result<Known> mirror_version(const std::string& path, const std::string& etag);
  Status fetch_missing(const std::string& path, const FileManifest& manifest);
  template <class Fn>
  Status with_retries(Fn&& fn);
  void load_state();
  void save_state() const;
  void remove_version(const std::string& path);

  std::unique_ptr<ObjectStore> store_;
  std::filesystem::path mirror_;
  ContentCache cache_;
  MirrorOptions options_;
  RepositoryStats* stats_;
  std::map<std::string, Known> known_;  // "<model>/<version>" -> what is mirrored
  // A version that failed is tried again when its manifest's ETag changes, or after a wait that
  // doubles with each failure (1 s … 10 min): a repaired object under an identical manifest
  // (same ETag) is found, and neither a corrupt object nor a full local disk costs a download
  // at every poll.
  struct Rejection {
    std::string etag;
    int failures = 0;
    std::chrono::steady_clock::time_point next_try;
  };
  std::map<std::string, Rejection> rejected_;
  int lock_fd_ = -1;    // claim()'s lock, held until destruction
  std::mutex sync_mu_;  // one poll at a time (the first one and the poller's may meet)
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;  // wakes a retry's backoff when stopping
};

// The mirror directory and cache a repository URL gets under a cache root: one per URL, so two
// servers with different repositories can share the root.
std::filesystem::path mirror_dir_for(const std::filesystem::path& cache_root,
                                     const std::string& url);

}  // namespace forklift
