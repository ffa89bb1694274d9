#include "cli/remote_repository.h"

#include <CLI/CLI.hpp>
#include <cstdlib>

#include "store/http_object_store.h"
#include "store/s3_object_store.h"

namespace forklift {
namespace {

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : std::move(fallback);
}

}  // namespace

bool is_remote_repository(const std::string& repository) {
  return repository.starts_with("s3://") || repository.starts_with("https://") ||
         repository.starts_with("http://");
}

void add_mirror_flags(CLI::App* cmd, RemoteRepositoryFlags& flags) {
  cmd->add_option("--repository-cache", flags.cache_dir,
                  "Remote repositories: where downloaded files and the local mirror are kept "
                  "(default $FORKLIFT_CACHE_DIR, else $XDG_CACHE_HOME/forklift, else "
                  "~/.cache/forklift)");
  cmd->add_option("--repository-download-threads", flags.download_threads,
                  "Files downloaded at once")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--max-version-mb", flags.max_version_mb,
                  "A remote version whose files add up to more is rejected")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
}

void add_store_flags(CLI::App* cmd, RemoteRepositoryFlags& flags) {
  cmd->add_option("--s3-endpoint", flags.s3_endpoint,
                  "S3-compatible store's URL, e.g. http://127.0.0.1:9000 (default "
                  "$AWS_ENDPOINT_URL_S3, else $AWS_ENDPOINT_URL, else AWS)");
  cmd->add_option("--s3-region", flags.s3_region,
                  "Region the requests are signed for (default $AWS_REGION, else "
                  "$AWS_DEFAULT_REGION, else us-east-1)");
  cmd->add_option("--s3-addressing", flags.s3_addressing,
                  "Bucket in the path (path) or the host name (virtual); auto: path when an "
                  "endpoint is given")
      ->check(CLI::IsMember({"auto", "path", "virtual"}))
      ->capture_default_str();
  cmd->add_option("--repository-ca-file", flags.ca_file,
                  "PEM certificates trusted for an https:// store, besides the system's")
      ->check(CLI::ExistingFile);
  cmd->add_option("--repository-timeout-seconds", flags.timeout_seconds,
                  "Each request to the store; a download or upload fails once it moves no byte "
                  "for this long")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
}

std::string cache_root(const RemoteRepositoryFlags& flags) {
  if (!flags.cache_dir.empty()) return flags.cache_dir;
  if (const char* v = std::getenv("FORKLIFT_CACHE_DIR"); v != nullptr && *v != '\0') return v;
  if (const char* v = std::getenv("XDG_CACHE_HOME"); v != nullptr && *v != '\0') {
    return std::string(v) + "/forklift";
  }
  return env_or("HOME", "/tmp") + "/.cache/forklift";
}

namespace {

// user:password@ in a URL would be sent (as Basic auth) and written into every log line that
// names the repository: refused, without quoting the URL.
bool has_userinfo(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return false;
  const std::string_view rest = url.substr(scheme + 3);
  return rest.substr(0, rest.find('/')).find('@') != std::string_view::npos;
}

}  // namespace

Result<std::unique_ptr<ObjectStore>> open_object_store(const std::string& url,
                                                       const RemoteRepositoryFlags& flags) {
  if (has_userinfo(url) || has_userinfo(flags.s3_endpoint)) {
    return InvalidArgument(
        "a repository or endpoint URL with user:password@ is refused: it would be logged. Use "
        "AWS credentials (environment, web identity or credentials file) for S3");
  }
  const auto timeout =
      std::chrono::milliseconds(static_cast<std::int64_t>(flags.timeout_seconds * 1000));
  if (url.starts_with("http://") || url.starts_with("https://")) {
    return std::unique_ptr<ObjectStore>(
        std::make_unique<HttpObjectStore>(url, flags.ca_file, timeout));
  }
  auto s3 = parse_s3_url(url);
  if (!s3.ok()) return s3.status();
  S3Options o;
  o.endpoint = flags.s3_endpoint.empty()
                   ? env_or("AWS_ENDPOINT_URL_S3", env_or("AWS_ENDPOINT_URL", ""))
                   : flags.s3_endpoint;
  if (!o.endpoint.empty() && !o.endpoint.starts_with("http://") &&
      !o.endpoint.starts_with("https://")) {
    return InvalidArgument("the S3 endpoint '" + o.endpoint +
                           "' must start with http:// or https://");
  }
  o.region = flags.s3_region.empty()
                 ? env_or("AWS_REGION", env_or("AWS_DEFAULT_REGION", "us-east-1"))
                 : flags.s3_region;
  // Path style with an endpoint (most S3-compatible stores want it), and for a bucket with dots
  // on AWS, whose name would not match the *.s3.amazonaws.com certificate (as the AWS SDKs do).
  o.path_style = flags.s3_addressing == "path" ||
                 (flags.s3_addressing == "auto" &&
                  (!o.endpoint.empty() || s3->bucket.find('.') != std::string::npos));
  o.ca_file = flags.ca_file;
  o.timeout = timeout;
  auto credentials = std::make_shared<AwsCredentialProvider>(o.region);
  return std::unique_ptr<ObjectStore>(std::make_unique<S3ObjectStore>(
      url, s3->bucket, s3->prefix, std::move(o), std::move(credentials)));
}

}  // namespace forklift
