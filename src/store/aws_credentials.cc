#include "store/aws_credentials.h"

#include <tinyxml2.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "common/http_client.h"
#include "observability/log.h"

namespace forklift {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::optional<std::string> real_env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

// Reads a small local file whole (a token, a credentials file): at most 1 MiB.
Result<std::string> read_small_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return FailedPrecondition("cannot read the " + what + " " + path);
  std::string text;
  text.resize(1 << 20);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (in.gcount() == (1 << 20))
    return FailedPrecondition("the " + what + " " + path + " is over 1 MiB");
  return text;
}

// "2026-11-29T17:00:00Z" (ISO 8601 in UTC, as STS writes it; fractions ignored). Years outside
// 1970-2200 are refused: system_clock counts nanoseconds, which overflow about 292 years from
// 1970 (a fuzzer's year -953 did), and no credential expires outside that span.
std::optional<std::chrono::system_clock::time_point> parse_utc(std::string_view text) {
  std::tm tm{};
  std::istringstream in{std::string(text)};
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  if (in.fail()) return std::nullopt;
  if (tm.tm_year < 1970 - 1900 || tm.tm_year > 2200 - 1900) return std::nullopt;
  const std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

}  // namespace

Result<AwsCredentials> parse_credentials_file(std::string_view text, std::string_view profile) {
  AwsCredentials c;
  c.source = "credentials file";
  bool in_profile = false;
  bool found = false;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = trim(text.substr(start, end - start));
    start = end + 1;
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      std::string_view name = trim(line.substr(1, line.find(']') - 1));
      if (name.starts_with("profile ")) name = trim(name.substr(8));
      in_profile = name == profile;
      found = found || in_profile;
      continue;
    }
    if (!in_profile) continue;
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = trim(line.substr(0, eq));
    const std::string value(trim(line.substr(eq + 1)));
    if (key == "aws_access_key_id") c.access_key = value;
    if (key == "aws_secret_access_key") c.secret_key = value;
    if (key == "aws_session_token") c.session_token = value;
  }
  if (!found) return NotFound("no profile '" + std::string(profile) + "' in the credentials file");
  if (c.access_key.empty() || c.secret_key.empty()) {
    return FailedPrecondition("profile '" + std::string(profile) +
                              "' of the credentials file has no aws_access_key_id and "
                              "aws_secret_access_key");
  }
  return c;
}

Result<AwsCredentials> parse_sts_answer(std::string_view xml) {
  tinyxml2::XMLDocument doc;
  if (doc.Parse(xml.data(), xml.size()) != tinyxml2::XML_SUCCESS) {
    return FailedPrecondition("STS answered with something that is not XML");
  }
  const auto* root = doc.RootElement();
  const tinyxml2::XMLElement* creds = nullptr;
  if (root != nullptr) {
    if (const auto* result = root->FirstChildElement("AssumeRoleWithWebIdentityResult")) {
      creds = result->FirstChildElement("Credentials");
    }
  }
  auto text = [&](const char* name) -> std::string {
    const auto* e = creds == nullptr ? nullptr : creds->FirstChildElement(name);
    return e != nullptr && e->GetText() != nullptr ? e->GetText() : "";
  };
  AwsCredentials c;
  c.source = "web identity";
  c.access_key = text("AccessKeyId");
  c.secret_key = text("SecretAccessKey");
  c.session_token = text("SessionToken");
  const auto expires = parse_utc(text("Expiration"));
  if (c.access_key.empty() || c.secret_key.empty() || !expires) {
    return FailedPrecondition("STS's answer holds no credentials with an expiration");
  }
  c.expires = *expires;
  return c;
}

AwsCredentialProvider::AwsCredentialProvider(std::string region, EnvLookup env)
    : region_(std::move(region)), env_(env ? std::move(env) : EnvLookup(real_env)) {}

Result<AwsCredentials> AwsCredentialProvider::get() {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::system_clock::now();
  if (cached_ && cached_->expires - std::chrono::minutes(5) > now) return *cached_;
  auto found = lookup();
  if (found.ok()) {
    // Which source, never what it holds.
    if (!cached_ || cached_->source != found->source) {
      log::info("aws_credentials", {{"source", found->source}});
    }
    cached_ = found.value();
  }
  return found;
}

Result<AwsCredentials> AwsCredentialProvider::lookup() {
  // 1. The environment.
  const auto key = env_("AWS_ACCESS_KEY_ID");
  const auto secret = env_("AWS_SECRET_ACCESS_KEY");
  if (key && secret) {
    AwsCredentials c;
    c.access_key = *key;
    c.secret_key = *secret;
    c.session_token = env_("AWS_SESSION_TOKEN").value_or("");
    c.source = "environment";
    return c;
  }
  // 2. A web-identity token, exchanged at STS.
  const auto token_file = env_("AWS_WEB_IDENTITY_TOKEN_FILE");
  const auto role = env_("AWS_ROLE_ARN");
  if (token_file && role) {
    auto token = read_small_file(*token_file, "web identity token file");
    if (!token.ok()) return token.status();
    std::string endpoint =
        env_("AWS_ENDPOINT_URL_STS")
            .value_or(region_.empty() ? "https://sts.amazonaws.com"
                                      : "https://sts." + region_ + ".amazonaws.com");
    while (endpoint.ends_with('/')) endpoint.pop_back();
    // In the body, not the URL: a token in a URL ends up in proxies' logs.
    const std::string body =
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&DurationSeconds=3600&RoleArn=" +
        uri_encode(*role, false) + "&RoleSessionName=" +
        uri_encode(env_("AWS_ROLE_SESSION_NAME").value_or("forklift"), false) +
        "&WebIdentityToken=" + uri_encode(trim(*token), false);
    HttpClient client;
    auto answer = client.call({.method = "POST",
                               .url = endpoint + "/",
                               .headers = {{"Content-Type", "application/x-www-form-urlencoded"}},
                               .body = body,
                               .timeout = std::chrono::seconds(10),
                               .max_body_bytes = 64 << 10});
    if (!answer.ok()) {
      return Unavailable("cannot exchange the web identity token at STS: " +
                         answer.status().message());
    }
    if (answer->status != 200) {
      return FailedPrecondition("STS refused the web identity token for role " + *role + " (HTTP " +
                                std::to_string(answer->status) + ")");
    }
    return parse_sts_answer(answer->body);
  }
  // 3. The shared credentials file.
  std::string file = env_("AWS_SHARED_CREDENTIALS_FILE").value_or("");
  if (file.empty()) {
    const auto home = env_("HOME");
    if (home) file = *home + "/.aws/credentials";
  }
  if (!file.empty() && std::ifstream(file).good()) {
    auto text = read_small_file(file, "credentials file");
    if (!text.ok()) return text.status();
    auto c = parse_credentials_file(*text, env_("AWS_PROFILE").value_or("default"));
    if (c.ok() || c.status().code() != StatusCode::kNotFound) return c;
  }
  AwsCredentials none;
  none.source = "none (unsigned requests)";
  return none;
}

}  // namespace forklift
