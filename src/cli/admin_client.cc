#include "cli/admin_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>

namespace forklift {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

// One request and its answer over a connected stream (plain or TLS).
template <class Stream>
AdminAnswer exchange(Stream& stream, const AdminEndpoint& endpoint, const std::string& method,
                     const std::string& authority, const std::string& path,
                     const std::string& body) {
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
  return AdminAnswer{res.result_int(), std::move(res.body())};
}

}  // namespace

Result<AdminAnswer> admin_call(const AdminEndpoint& endpoint, const std::string& method,
                               const std::string& path, const std::string& body) {
  const std::string_view url = endpoint.url;
  const bool tls = url.starts_with("https://");
  if (!tls && !url.starts_with("http://")) {
    return InvalidArgument("server URL '" + endpoint.url + "' must start with http:// or https://");
  }
  std::string authority = endpoint.url.substr(tls ? 8 : 7);
  authority = authority.substr(0, authority.find('/'));
  const auto colon = authority.rfind(':');
  const std::string host = colon == std::string::npos ? authority : authority.substr(0, colon);
  const std::string port =
      colon == std::string::npos ? (tls ? "443" : "80") : authority.substr(colon + 1);
  try {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    const auto addresses = resolver.resolve(host, port);
    const auto timeout = std::chrono::seconds(60);  // a deploy may load and self-test a model
    if (!tls) {
      beast::tcp_stream stream(ioc);
      stream.expires_after(timeout);
      stream.connect(addresses);
      AdminAnswer answer = exchange(stream, endpoint, method, authority, path, body);
      beast::error_code ec;
      stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      return answer;
    }
    // The server's certificate must chain to a trusted CA and name the host.
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_default_verify_paths();
    if (!endpoint.ca_file.empty()) ctx.load_verify_file(endpoint.ca_file);
    beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
    stream.set_verify_mode(ssl::verify_peer);
    stream.set_verify_callback(ssl::host_name_verification(host));
    if (!SSL_set_tlsext_host_name(stream.native_handle(), host.c_str())) {
      return InvalidArgument("cannot use '" + host + "' as a TLS server name");
    }
    beast::get_lowest_layer(stream).expires_after(timeout);
    beast::get_lowest_layer(stream).connect(addresses);
    stream.handshake(ssl::stream_base::client);
    AdminAnswer answer = exchange(stream, endpoint, method, authority, path, body);
    beast::error_code ec;
    stream.shutdown(ec);  // close_notify; the server may close first, which is fine
    return answer;
  } catch (const std::exception& e) {
    return Unavailable("cannot reach " + endpoint.url + ": " + e.what());
  }
}

}  // namespace forklift
