#include "cli/admin_client.h"

#include "common/http_client.h"

namespace forklift {

Result<AdminAnswer> admin_call(const AdminEndpoint& endpoint, const std::string& method,
                               const std::string& path, const std::string& body) {
  const std::string_view url = endpoint.url;
  if (!url.starts_with("https://") && !url.starts_with("http://")) {
    return InvalidArgument("server URL '" + endpoint.url + "' must start with http:// or https://");
  }
  std::string base = endpoint.url;
  while (base.ends_with('/')) base.pop_back();
  HttpCall call;
  call.method = method;
  call.url = base + path;
  call.headers = {{"Content-Type", "application/json"}, {"User-Agent", "forklift-cli"}};
  if (!endpoint.token.empty())
    call.headers.emplace_back("Authorization", "Bearer " + endpoint.token);
  if (!endpoint.actor.empty()) call.headers.emplace_back("x-forklift-actor", endpoint.actor);
  call.body = body;
  call.timeout = endpoint.timeout;  // for the whole call
  call.ca_file =
      endpoint.ca_file;  // https: the certificate must chain to a trusted CA and name the host
  HttpClient client;
  auto answer = client.call(call);
  if (!answer.ok()) {
    if (answer.status().code() == StatusCode::kDeadlineExceeded) {
      // The call reached the server, or may have: a change it asked for may still be going on.
      return DeadlineExceeded("no answer from " + endpoint.url + " within " +
                              std::to_string(endpoint.timeout.count()) +
                              " s (--timeout); a change may still be in progress there: check "
                              "with `forklift status`");
    }
    return answer.status();  // "cannot reach URL: why", or a malformed URL
  }
  return AdminAnswer{static_cast<unsigned>(answer->status), std::move(answer->body)};
}

}  // namespace forklift
