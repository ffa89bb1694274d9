// An S3-compatible bucket as a model repository: ListObjectsV2, GetObject and PutObject over
// HTTP(S), signed with AWS Signature Version 4 by libcurl.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "store/aws_credentials.h"
#include "store/object_store.h"

namespace forklift {

struct S3Options {
  // Empty: AWS (https://s3.<region>.amazonaws.com). Otherwise the store's base URL, e.g.
  // http://127.0.0.1:9000 for MinIO or s3rver.
  std::string endpoint;
  std::string region = "us-east-1";
  // Bucket in the path (http://host/bucket/key) rather than in the host name
  // (https://bucket.host/key). Most S3-compatible stores need it; AWS accepts both.
  bool path_style = false;
  std::string ca_file;  // https: PEM certificates trusted besides the system's
  std::chrono::milliseconds timeout{60'000};
};

class S3ObjectStore final : public ObjectStore {
 public:
  // `url` is s3://bucket[/prefix]; checked by parse_s3_url first.
  S3ObjectStore(std::string url, std::string bucket, std::string prefix, S3Options options,
                std::shared_ptr<AwsCredentialProvider> credentials);

  const std::string& url() const override { return url_; }
  Result<std::vector<ObjectInfo>> list_manifests(std::size_t max_keys) override;
  Status get(const std::string& key, std::uint64_t max_bytes, const ObjectSink& sink) override;
  Status put(const std::string& key, std::string_view body, const std::string& sha256) override;
  Status put_file(const std::string& key, const std::string& file,
                  const std::string& sha256) override;
  bool writable() const override { return true; }

 private:
  // One signed call; `query` must already be in canonical order (libcurl 7.88 signs it as
  // written).
  Result<HttpAnswer> call(HttpCall call, const std::string& object_path, const std::string& query,
                          const std::string& payload_sha256);
  std::unique_ptr<HttpClient> take_client();
  void give_back(std::unique_ptr<HttpClient> client);

  std::string url_;
  std::string bucket_;
  std::string prefix_;  // "" or ending in '/'
  S3Options options_;
  std::shared_ptr<AwsCredentialProvider> credentials_;
  std::mutex mu_;
  std::vector<std::unique_ptr<HttpClient>> idle_;  // kept-alive connections
};

// s3://bucket[/prefix]: a bucket name of 3-63 of [a-z0-9.-], a prefix of safe relative parts.
struct S3Url {
  std::string bucket;
  std::string prefix;  // "" or ending in '/'
};
Result<S3Url> parse_s3_url(std::string_view url);

// The S3 error code in an error answer's XML (<Error><Code>…), letters only, or "".
std::string s3_error_code(std::string_view xml);

}  // namespace forklift
