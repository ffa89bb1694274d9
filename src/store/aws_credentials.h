// AWS credentials for signing S3 requests, looked up the way the AWS SDKs do, first found wins:
//   1. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment;
//   2. a web-identity token file (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN: Kubernetes
//      service accounts, IRSA), exchanged at STS (AssumeRoleWithWebIdentity) for temporary
//      credentials, renewed before they expire; AWS_ENDPOINT_URL_STS names another STS;
//   3. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials), the
//      profile AWS_PROFILE or "default".
// None found: requests go unsigned (a public bucket). Keys are never logged or put in errors.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "forklift/status.h"

namespace forklift {

struct AwsCredentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // temporary credentials only
  std::chrono::system_clock::time_point expires = std::chrono::system_clock::time_point::max();
  std::string source;  // "environment", "web identity", "credentials file": safe to log

  bool anonymous() const { return access_key.empty(); }
};

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

class AwsCredentialProvider {
 public:
  // `env` reads the environment (tests pass their own); `region` picks the regional STS.
  explicit AwsCredentialProvider(std::string region, EnvLookup env = {});

  // Cached; temporary credentials are renewed five minutes before they expire.
  Result<AwsCredentials> get();

 private:
  Result<AwsCredentials> lookup();

  std::string region_;
  EnvLookup env_;
  std::mutex mu_;
  std::optional<AwsCredentials> cached_;
};

// The [profile] of an AWS shared credentials file's text (INI): aws_access_key_id,
// aws_secret_access_key, aws_session_token. NotFound when the profile is not there.
Result<AwsCredentials> parse_credentials_file(std::string_view text, std::string_view profile);

// The credentials in an STS AssumeRoleWithWebIdentity answer (XML).
Result<AwsCredentials> parse_sts_answer(std::string_view xml);

}  // namespace forklift
