#include "store/s3_object_store.h"

#include <tinyxml2.h>

#include <set>
#include <string_view>

#include "store/file_manifest.h"

namespace forklift {
namespace {

// The SHA-256 of nothing: the payload hash of a GET.
constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr std::uint64_t kMaxListPageBytes = 16ull << 20;
constexpr std::uint64_t kMaxErrorBodyBytes = 64 << 10;

bool valid_bucket(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (const char c : b) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) return false;
  }
  return b.front() != '.' && b.front() != '-' && b.back() != '.' && b.back() != '-';
}

std::string_view strip_quotes(std::string_view s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

// What an S3 error answer means for the caller: NotFound, a refusal to fix (credentials, policy,
// no such bucket) or a transient failure worth retrying (5xx, throttling).
Status s3_failure(const std::string& what, const HttpAnswer& a) {
  const std::string code = s3_error_code(a.body);
  const std::string detail = "HTTP " + std::to_string(a.status) + (code.empty() ? "" : " " + code);
  if (a.status == 404 && code != "NoSuchBucket") return NotFound(what + ": no such object");
  if (a.status == 401 || a.status == 403) {
    return FailedPrecondition(what + " was refused (" + detail +
                              "): check the credentials, the region and the bucket's policy");
  }
  if (a.status >= 500 || a.status == 429) return Unavailable(what + " failed (" + detail + ")");
  return FailedPrecondition(what + " failed (" + detail + ")");
}

}  // namespace

std::string s3_error_code(std::string_view xml) {
  tinyxml2::XMLDocument doc;
  if (doc.Parse(xml.data(), xml.size()) != tinyxml2::XML_SUCCESS) return "";
  const auto* root = doc.RootElement();
  const auto* code = root == nullptr ? nullptr : root->FirstChildElement("Code");
  if (code == nullptr || code->GetText() == nullptr) return "";
  std::string out;
  for (const char* p = code->GetText(); *p != '\0' && out.size() < 64; ++p) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) out.push_back(*p);
  }
  return out;
}

Result<S3Url> parse_s3_url(std::string_view url) {
  if (!url.starts_with("s3://")) return InvalidArgument("an S3 repository URL starts with s3://");
  std::string_view rest = url.substr(5);
  const auto slash = rest.find('/');
  S3Url out;
  out.bucket = std::string(rest.substr(0, slash));
  if (!valid_bucket(out.bucket)) {
    return InvalidArgument("'" + out.bucket +
                           "' is not an S3 bucket name (3-63 of a-z, 0-9, '.' and '-')");
  }
  std::string_view prefix = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  while (prefix.ends_with('/')) prefix.remove_suffix(1);
  if (!prefix.empty()) {
    if (!is_safe_relative_path(prefix)) {
      return InvalidArgument("the prefix of " + std::string(url) +
                             " must be '/'-separated names without '.', '..' or empty parts");
    }
    out.prefix = std::string(prefix) + "/";
  }
  return out;
}

S3ObjectStore::S3ObjectStore(std::string url, std::string bucket, std::string prefix,
                             S3Options options, std::shared_ptr<AwsCredentialProvider> credentials)
    : url_(std::move(url)),
      bucket_(std::move(bucket)),
      prefix_(std::move(prefix)),
      options_(std::move(options)),
      credentials_(std::move(credentials)) {
  while (options_.endpoint.ends_with('/')) options_.endpoint.pop_back();
}

std::unique_ptr<HttpClient> S3ObjectStore::take_client() {
  std::lock_guard lock(mu_);
  if (idle_.empty()) return std::make_unique<HttpClient>();
  auto c = std::move(idle_.back());
  idle_.pop_back();
  return c;
}

void S3ObjectStore::give_back(std::unique_ptr<HttpClient> client) {
  std::lock_guard lock(mu_);
  if (idle_.size() < 16) idle_.push_back(std::move(client));
}

Result<HttpAnswer> S3ObjectStore::call(HttpCall call, const std::string& object_path,
                                       const std::string& query,
                                       const std::string& payload_sha256) {
  // https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html
  std::string base;
  if (options_.endpoint.empty()) {
    base = options_.path_style ? "https://s3." + options_.region + ".amazonaws.com/" + bucket_
                               : "https://" + bucket_ + ".s3." + options_.region + ".amazonaws.com";
  } else if (options_.path_style) {
    base = options_.endpoint + "/" + bucket_;
  } else {
    const auto scheme_end = options_.endpoint.find("://");
    base = options_.endpoint.substr(0, scheme_end + 3) + bucket_ + "." +
           options_.endpoint.substr(scheme_end + 3);
  }
  call.url = base + (object_path.empty() ? (options_.path_style ? "" : "/") : "/" + object_path) +
             (query.empty() ? "" : "?" + query);
  call.ca_file = options_.ca_file;
  if (call.timeout.count() != 0) call.timeout = options_.timeout;
  call.cancel = cancel_;
  auto creds = credentials_->get();
  if (!creds.ok()) return creds.status();
  if (!creds->anonymous()) {
    call.aws_sigv4 = "aws:amz:" + options_.region + ":s3";
    call.aws_credentials = creds->access_key + ":" + creds->secret_key;
    call.headers.emplace_back("x-amz-content-sha256", payload_sha256);
    if (!creds->session_token.empty()) {
      call.headers.emplace_back("x-amz-security-token", creds->session_token);
    }
  }
  auto client = take_client();
  auto answer = client->call(call);
  give_back(std::move(client));
  return answer;
}

Result<std::vector<ObjectInfo>> S3ObjectStore::list_manifests(std::size_t max_keys) {
  std::vector<ObjectInfo> out;
  std::string token;
  std::set<std::string> tokens_seen;
  std::size_t keys = 0;
  // A store cannot keep a listing going: at most this many pages (1,000 keys each on S3), and
  // never a continuation token twice.
  const std::size_t max_pages = max_keys / 1000 + 100;
  for (std::size_t page = 0;; ++page) {
    if (page >= max_pages) {
      return FailedPrecondition("listing " + url_ + " did not end within " +
                                std::to_string(max_pages) + " pages");
    }
    if (cancel_ != nullptr && cancel_->load()) return Unavailable("cancelled: listing " + url_);
    // Canonical order: continuation-token, list-type, prefix.
    std::string query;
    if (!token.empty()) query = "continuation-token=" + uri_encode(token, false) + "&";
    query += "list-type=2&prefix=" + uri_encode(prefix_, false);
    auto answer = call({.method = "GET", .max_body_bytes = kMaxListPageBytes}, "", query,
                       std::string(kEmptySha256));
    if (!answer.ok()) return answer.status();
    if (answer->status != 200) return s3_failure("listing " + url_, *answer);
    tinyxml2::XMLDocument doc;
    if (doc.Parse(answer->body.data(), answer->body.size()) != tinyxml2::XML_SUCCESS ||
        doc.RootElement() == nullptr) {
      return Unavailable("listing " + url_ + " answered with something that is not XML");
    }
    const auto* root = doc.RootElement();
    for (const auto* c = root->FirstChildElement("Contents"); c != nullptr;
         c = c->NextSiblingElement("Contents")) {
      if (++keys > max_keys) {
        return FailedPrecondition(url_ + " holds more than " + std::to_string(max_keys) +
                                  " objects: give the repository a narrower prefix");
      }
      const auto* key = c->FirstChildElement("Key");
      const auto* etag = c->FirstChildElement("ETag");
      const auto* size = c->FirstChildElement("Size");
      if (key == nullptr || key->GetText() == nullptr) continue;
      std::string_view k = key->GetText();
      if (!k.starts_with(prefix_)) continue;
      k.remove_prefix(prefix_.size());
      if (!k.ends_with(kFileManifestName)) continue;  // only the versions' manifests matter
      ObjectInfo info;
      info.key = std::string(k);
      info.etag = etag != nullptr && etag->GetText() != nullptr
                      ? std::string(strip_quotes(etag->GetText()))
                      : "";
      std::uint64_t n = 0;
      if (size != nullptr) size->QueryUnsigned64Text(&n);
      info.size = n;
      out.push_back(std::move(info));
    }
    const auto* truncated = root->FirstChildElement("IsTruncated");
    const auto* next = root->FirstChildElement("NextContinuationToken");
    const bool more = truncated != nullptr && truncated->GetText() != nullptr &&
                      std::string_view(truncated->GetText()) == "true";
    if (!more) break;
    if (next == nullptr || next->GetText() == nullptr || *next->GetText() == '\0') {
      return Unavailable("listing " + url_ + " is truncated without a continuation token");
    }
    std::string following = next->GetText();
    if (following.size() > 4096 || !tokens_seen.insert(following).second) {
      return FailedPrecondition("listing " + url_ + " does not move on to a next page");
    }
    token = std::move(following);
  }
  return out;
}

Status S3ObjectStore::get(const std::string& key, std::uint64_t max_bytes, const ObjectSink& sink) {
  const std::string what = "reading " + url_ + "/" + key;
  // No limit on the whole download (a large file takes as long as it takes); a stall is one.
  auto answer = call({.method = "GET",
                      .timeout = std::chrono::milliseconds(0),
                      .stall_timeout = options_.timeout,
                      .max_body_bytes = kMaxErrorBodyBytes,
                      .sink = at_most(max_bytes, what, sink)},
                     uri_encode(prefix_ + key, true), "", std::string(kEmptySha256));
  if (!answer.ok()) return answer.status();
  if (answer->status != 200) return s3_failure(what, *answer);
  return Status::Ok();
}

Status S3ObjectStore::put_file(const std::string& key, const std::string& file,
                               const std::string& sha256) {
  const std::string what = "writing " + url_ + "/" + key;
  auto answer = call({.method = "PUT",
                      .headers = {{"Content-Type", "application/octet-stream"}},
                      .upload_file = file,
                      .timeout = std::chrono::milliseconds(0),  // as long as the file takes
                      .stall_timeout = options_.timeout,
                      .max_body_bytes = kMaxErrorBodyBytes},
                     uri_encode(prefix_ + key, true), "", sha256);
  if (!answer.ok()) return answer.status();
  if (answer->status != 200) return s3_failure(what, *answer);
  return Status::Ok();
}

Status S3ObjectStore::put(const std::string& key, std::string_view body,
                          const std::string& sha256) {
  const std::string what = "writing " + url_ + "/" + key;
  auto answer = call({.method = "PUT",
                      .headers = {{"Content-Type", "application/octet-stream"}},
                      .body = body,
                      .max_body_bytes = kMaxErrorBodyBytes},
                     uri_encode(prefix_ + key, true), "", sha256);
  if (!answer.ok()) return answer.status();
  if (answer->status != 200) return s3_failure(what, *answer);
  return Status::Ok();
}

}  // namespace forklift
