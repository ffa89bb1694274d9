// One HTTP client for every outgoing call forklift makes (the CLI's admin calls, the OTLP trace
// exporter, object-storage repositories), on libcurl: TLS with the system's and a given CA,
// timeouts, proxies from the environment, AWS Signature Version 4. A body is read into memory up
// to a bound, or handed to a sink piece by piece (downloads), never more than was asked for.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forklift/status.h"

namespace forklift {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpCall {
  std::string method = "GET";
  std::string url = {};  // http:// or https:// only: other schemes are refused
  HttpHeaders headers = {};
  std::string_view body = {};  // sent as is (PUT, POST); must outlive the call
  // Or a file's content, read as it is sent (a PUT of any size without holding it in memory).
  std::string upload_file = {};
  // For the whole call (connect, send, answer; 0: no limit), and for connecting alone.
  std::chrono::milliseconds timeout{30'000};
  std::chrono::milliseconds connect_timeout{10'000};
  // A transfer that moves no byte for this long fails (0: not checked): what bounds a large
  // download, whose whole duration depends on its size.
  std::chrono::milliseconds stall_timeout{0};
  std::string ca_file = {};  // https: PEM certificates trusted besides the system's
  // AWS Signature Version 4, e.g. "aws:amz:us-east-1:s3", with `aws_credentials` as
  // "ACCESS_KEY:SECRET_KEY". The caller adds x-amz-content-sha256 (libcurl signs it) and, for
  // temporary credentials, x-amz-security-token.
  std::string aws_sigv4 = {};
  std::string aws_credentials = {};
  // An answer body longer than this fails the call (ResourceExhausted-like Unavailable), when no
  // sink is given.
  std::uint64_t max_body_bytes = 64ull << 20;
  // When set, the body goes here piece by piece instead of into HttpAnswer::body; returning an
  // error stops the transfer and becomes the call's result. Called only for 2xx answers: an
  // error answer's body (bounded by max_body_bytes) still lands in HttpAnswer::body.
  std::function<Status(std::string_view)> sink = {};
  // When set and true, the transfer stops (Unavailable "cancelled"): a server shutting down does
  // not wait out a slow download.
  const std::atomic<bool>* cancel = nullptr;
};

struct HttpAnswer {
  long status = 0;
  HttpHeaders headers = {};  // names in lower case, of the final answer only
  std::string body = {};

  // The first header of that name (lower case), or empty.
  std::string_view header(std::string_view name) const;
};

// A reusable connection (keep-alive) for calls made one after another from one thread at a time.
// Errors: a malformed or non-HTTP URL is InvalidArgument; no connection, a failed TLS handshake or
// a broken transfer is Unavailable; the timeout passing is DeadlineExceeded; an error from the
// sink is returned as it is. An HTTP error status is an answer, not an error.
class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  Result<HttpAnswer> call(const HttpCall& call);

 private:
  struct Handle;
  std::unique_ptr<Handle> handle_;
};

// RFC 3986 percent-encoding as AWS signs it: unreserved characters kept, everything else %XX in
// upper case; '/' kept when `keep_slash` (object keys in paths).
std::string uri_encode(std::string_view text, bool keep_slash);

}  // namespace forklift
