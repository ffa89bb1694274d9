// A read-only model repository on a static HTTP(S) site (a web server, a CDN, a bucket's public
// website): no listing API there, so the site's root holds an index, `forklift-index.json`,
// which `forklift push` keeps up to date:
//   {"format": 1, "versions": [{"path": "eta/3", "files_sha256": "<digest of its manifest>"}]}
// The index is fetched with If-None-Match, so an unchanged repository costs one small answer.
#pragma once

#include <mutex>
#include <string>

#include "common/http_client.h"
#include "store/object_store.h"

namespace forklift {

inline constexpr std::string_view kRepositoryIndexName = "forklift-index.json";
inline constexpr std::size_t kMaxRepositoryIndexBytes = 8 << 20;

struct RepositoryIndexEntry {
  std::string path;          // "<model>/<version>"
  std::string files_sha256;  // the digest of that version's forklift-files.json
};

Result<std::vector<RepositoryIndexEntry>> parse_repository_index(std::string_view json);
std::string repository_index_json(const std::vector<RepositoryIndexEntry>& entries);

class HttpObjectStore final : public ObjectStore {
 public:
  // `url`: http(s)://host/path, the repository's root.
  HttpObjectStore(std::string url, std::string ca_file, std::chrono::milliseconds timeout);

  const std::string& url() const override { return url_; }
  Result<std::vector<ObjectInfo>> list_manifests(std::size_t max_keys) override;
  Status get(const std::string& key, std::uint64_t max_bytes, const ObjectSink& sink) override;
  Status put(const std::string&, std::string_view, const std::string&) override {
    return FailedPrecondition(url_ + " is a read-only static repository");
  }
  Status put_file(const std::string&, const std::string&, const std::string&) override {
    return FailedPrecondition(url_ + " is a read-only static repository");
  }
  bool writable() const override { return false; }
  bool etag_is_manifest_digest() const override { return true; }

 private:
  std::string url_;
  std::string base_;  // url_ without a trailing '/'
  std::string ca_file_;
  std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::string index_etag_;  // the last index's ETag, for If-None-Match
  std::vector<ObjectInfo> index_;
};

}  // namespace forklift
