#include "common/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdio>
#include <mutex>

namespace forklift {

namespace {

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// What one transfer collects; the callbacks below get it as their user pointer.
struct Transfer {
  const HttpCall* call = nullptr;
  HttpAnswer answer;
  Status sink_status;    // what the sink said when it stopped the transfer
  bool too_big = false;  // the body passed max_body_bytes
};

// A header line; a new status line starts the headers over (100 Continue, redirects).
std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  const std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {
    // "HTTP/1.1 200 OK": the status is the second word. Known before the body arrives, so the
    // body callback can choose between the sink and the bounded string.
    t->answer.headers.clear();
    long status = 0;
    const auto space = line.find(' ');
    for (std::size_t i = space == std::string_view::npos ? n : space + 1;
         i < n && line[i] >= '0' && line[i] <= '9' && status < 1000; ++i) {
      status = status * 10 + (line[i] - '0');
    }
    t->answer.status = status;
    return n;
  }
  const auto colon = line.find(':');
  // A few KB of headers are plenty; a server sending more is not worth remembering.
  if (colon != std::string_view::npos && t->answer.headers.size() < 200) {
    t->answer.headers.emplace_back(lower(trim(line.substr(0, colon))),
                                   std::string(trim(line.substr(colon + 1))));
  }
  return n;
}

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  if (t->call->sink && t->answer.status >= 200 && t->answer.status < 300) {
    Status s = t->call->sink(std::string_view(data, n));
    if (!s.ok()) {
      t->sink_status = std::move(s);
      return 0;  // makes libcurl stop with CURLE_WRITE_ERROR
    }
    return n;
  }
  if (t->answer.body.size() + n > t->call->max_body_bytes) {
    t->too_big = true;
    return 0;
  }
  t->answer.body.append(data, n);
  return n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const std::atomic<bool>*>(user);
  return cancel->load(std::memory_order_relaxed) ? 1 : 0;  // non-zero aborts the transfer
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

std::string_view HttpAnswer::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return {};
}

struct HttpClient::Handle {
  std::unique_ptr<CURL, CurlDeleter> curl;
};

HttpClient::HttpClient() : handle_(std::make_unique<Handle>()) {
  global_init();
  handle_->curl.reset(curl_easy_init());
}
HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

Result<HttpAnswer> HttpClient::call(const HttpCall& call) {
  CURL* curl = handle_ ? handle_->curl.get() : nullptr;
  if (curl == nullptr) return Internal("libcurl could not start");
  if (!(call.url.starts_with("http://") && call.url.size() > 7) &&
      !(call.url.starts_with("https://") && call.url.size() > 8)) {
    return InvalidArgument("URL '" + call.url + "' must start with http:// or https://");
  }
  curl_easy_reset(curl);
  Transfer t;
  t.call = &call;

  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add_header = [&](const std::string& line) {
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (next != nullptr) {
      (void)headers.release();
      headers.reset(next);
    }
  };
  for (const auto& [name, value] : call.headers) add_header(name + ": " + value);
  // libcurl would otherwise send "Expect: 100-continue" on large bodies and wait a second for
  // it. Not when signing: libcurl 7.88 would sign the empty header it then leaves out, and a
  // store answers 100-continue at once anyway.
  if (call.aws_sigv4.empty()) add_header("Expect:");

  // libcurl's own words for a failure say more than its error code's ("SSL certificate
  // problem: self-signed certificate" rather than "SSL peer certificate ... was not OK").
  char error_text[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_text);
  curl_easy_setopt(curl, CURLOPT_URL, call.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(call.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(call.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  if (!call.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, call.ca_file.c_str());
  if (call.stall_timeout.count() > 0) {
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(
        curl, CURLOPT_LOW_SPEED_TIME,
        static_cast<long>(std::max<std::int64_t>(1, call.stall_timeout.count() / 1000)));
  }
  if (call.cancel != nullptr) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(call.cancel));
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> upload(nullptr, std::fclose);
  if (!call.upload_file.empty()) {
    upload.reset(std::fopen(call.upload_file.c_str(), "rb"));
    if (!upload) return InvalidArgument("cannot read " + call.upload_file);
    std::fseek(upload.get(), 0, SEEK_END);
    const long size = std::ftell(upload.get());
    std::fseek(upload.get(), 0, SEEK_SET);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);  // PUT, body from READDATA (fread by default)
    curl_easy_setopt(curl, CURLOPT_READDATA, upload.get());
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
  } else if (call.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (call.method != "GET" || !call.body.empty()) {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, call.method.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, call.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
  }
  if (!call.aws_sigv4.empty()) {
    curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, call.aws_sigv4.c_str());
    curl_easy_setopt(curl, CURLOPT_USERPWD, call.aws_credentials.c_str());
  }
  const CURLcode code = curl_easy_perform(curl);
  // Credentials live only as long as the call: the handle is reused.
  curl_easy_setopt(curl, CURLOPT_USERPWD, nullptr);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  const std::string why = error_text[0] != '\0' ? error_text : curl_easy_strerror(code);
  if (code == CURLE_WRITE_ERROR && !t.sink_status.ok()) return t.sink_status;
  if (code == CURLE_WRITE_ERROR && t.too_big) {
    return Unavailable("the answer from " + call.url + " is larger than " +
                       std::to_string(call.max_body_bytes) + " bytes");
  }
  if (code == CURLE_ABORTED_BY_CALLBACK) return Unavailable("cancelled: " + call.url);
  if (code == CURLE_OPERATION_TIMEDOUT) {
    return DeadlineExceeded("no answer from " + call.url + " in time: " + why);
  }
  if (code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL) {
    return InvalidArgument("URL '" + call.url + "': " + why);
  }
  if (code != CURLE_OK) {
    return Unavailable("cannot reach " + call.url + ": " + why);
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  t.answer.status = status;
  return std::move(t.answer);
}

std::string uri_encode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (alnum || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace forklift
