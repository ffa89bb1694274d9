// The flags and set-up shared by `forklift serve` and `forklift push` for model repositories in
// object storage: s3://bucket/prefix (any S3-compatible store) and http(s):// static sites.
#pragma once

#include <memory>
#include <string>

#include "forklift/status.h"
#include "store/object_store.h"

namespace CLI {
class App;
}

namespace forklift {

struct RemoteRepositoryFlags {
  std::string
      cache_dir;  // default $FORKLIFT_CACHE_DIR, else $XDG_CACHE_HOME/forklift, ~/.cache/forklift
  std::string s3_endpoint;  // default $AWS_ENDPOINT_URL_S3, else $AWS_ENDPOINT_URL, else AWS
  std::string s3_region;    // default $AWS_REGION, else $AWS_DEFAULT_REGION, else us-east-1
  std::string s3_addressing = "auto";  // path | virtual | auto (path with an endpoint)
  std::string ca_file;                 // https: PEM certificates trusted besides the system's
  std::size_t download_threads = 4;
  std::size_t max_version_mb = 16384;
  double timeout_seconds = 60;  // per request
};

// Whether `repository` names object storage rather than a local directory.
bool is_remote_repository(const std::string& repository);

// The flags of the store itself (endpoint, region, addressing, CA, timeout): serve and push.
void add_store_flags(CLI::App* cmd, RemoteRepositoryFlags& flags);
// The flags of the local mirror (cache, downloads, version size): serve only.
void add_mirror_flags(CLI::App* cmd, RemoteRepositoryFlags& flags);

// The store for an s3:// or http(s):// URL, with credentials looked up as aws_credentials.h says.
Result<std::unique_ptr<ObjectStore>> open_object_store(const std::string& url,
                                                       const RemoteRepositoryFlags& flags);

// The cache root (blobs and mirrors), from the flag or the environment.
std::string cache_root(const RemoteRepositoryFlags& flags);

}  // namespace forklift
