#include "cli/admin_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

namespace forklift {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

Result<AdminAnswer> admin_call(const AdminEndpoint& endpoint, const std::string& method,
                               const std::string& path, const std::string& body) {
  constexpr std::string_view kScheme = "http://";
  if (!std::string_view(endpoint.url).starts_with(kScheme)) {
    return InvalidArgument("server URL '" + endpoint.url + "' must start with http://");
  }
  std::string authority = endpoint.url.substr(kScheme.size());
  authority = authority.substr(0, authority.find('/'));
  const auto colon = authority.rfind(':');
  const std::string host = colon == std::string::npos ? authority : authority.substr(0, colon);
  const std::string port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
  try {
    boost::asio::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(60));  // a deploy may load and self-test a model
    stream.connect(resolver.resolve(host, port));
    http::request<http::string_body> req(http::string_to_verb(method), path, 11);
    req.set(http::field::host, authority);
    req.set(http::field::user_agent, "forklift-cli");
    req.set(http::field::content_type, "application/json");
    if (!endpoint.token.empty()) req.set(http::field::authorization, "Bearer " + endpoint.token);
    if (!endpoint.actor.empty()) req.set("x-forklift-actor", endpoint.actor);
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    return AdminAnswer{res.result_int(), std::move(res.body())};
  } catch (const std::exception& e) {
    return Unavailable("cannot reach " + endpoint.url + ": " + e.what());
  }
}

}  // namespace forklift
