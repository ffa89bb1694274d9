// Where a remote model repository's objects are read from (and `forklift push` writes to): an
// S3-compatible bucket, or a static HTTP(S) site. Keys are relative to the repository's root
// ("eta/3/model.yaml"). Every answer is untrusted: listings, sizes and bodies are bounded.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/status.h"

namespace forklift {

struct ObjectInfo {
  std::string key;  // relative to the repository root
  std::uint64_t size = 0;
  std::string etag;  // changes whenever the object does; opaque
};

using ObjectSink = std::function<Status(std::string_view)>;

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // The repository's URL as the user gave it (never with credentials): for logs and errors.
  virtual const std::string& url() const = 0;

  // The version file manifests under the root, "<model>/<version>/forklift-files.json", with
  // their ETags: an S3 listing (paginated, at most `max_keys` keys in all), or a static site's
  // index (forklift-index.json). Other keys may be returned too; callers pick what they need.
  virtual Result<std::vector<ObjectInfo>> list_manifests(std::size_t max_keys) = 0;

  // Reads one object: its bytes go to `sink` as they arrive, and never more than `max_bytes`
  // (a longer object is an error). NotFound when there is no such object.
  virtual Status get(const std::string& key, std::uint64_t max_bytes, const ObjectSink& sink) = 0;

  // Writes one object whole; `sha256` is the body's digest (signed with it).
  virtual Status put(const std::string& key, std::string_view body, const std::string& sha256) = 0;
  // The same from a file, read as it is sent (a file of any size, never whole in memory).
  virtual Status put_file(const std::string& key, const std::string& file,
                          const std::string& sha256) = 0;

  // Whether put() works here (a static HTTP site is read-only).
  virtual bool writable() const = 0;

  // Whether list_manifests' ETags are the SHA-256 of each manifest (a static site's index says
  // so), which the mirror then checks.
  virtual bool etag_is_manifest_digest() const { return false; }

  // Every request this store makes stops as soon as `*cancel` turns true (shutdown).
  void set_cancel(const std::atomic<bool>* cancel) { cancel_ = cancel; }

 protected:
  const std::atomic<bool>* cancel_ = nullptr;
};

// `sink`, refusing more than `max_bytes` in all (FailedPrecondition naming `what`): what a store's
// get() hands the transfer, so no object is longer than its caller allows.
ObjectSink at_most(std::uint64_t max_bytes, std::string what, ObjectSink sink);

// Reads a whole (small) object into a string.
Result<std::string> get_object(ObjectStore& store, const std::string& key, std::uint64_t max_bytes);

}  // namespace forklift
