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

// Runs one asynchronous operation to completion and throws its error. Asynchronous because
// Beast's stream timeouts (expires_after) bound only asynchronous operations: with blocking
// calls a server that accepted and never answered kept the CLI waiting for good.
template <class Start>
void run(asio::io_context& ioc, Start&& start) {
  beast::error_code result;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  if (result) throw boost::system::system_error(result);
}

// One request and its answer over a connected stream (plain or TLS).
template <class Stream>
AdminAnswer exchange(asio::io_context& ioc, Stream& stream, const AdminEndpoint& endpoint,
                     const std::string& method, const std::string& authority,
                     const std::string& path, const std::string& body) {
  http::request<http::string_body> req(http::string_to_verb(method), path, 11);
  req.set(http::field::host, authority);
  req.set(http::field::user_agent, "forklift-cli");
  req.set(http::field::content_type, "application/json");
  if (!endpoint.token.empty()) req.set(http::field::authorization, "Bearer " + endpoint.token);
  if (!endpoint.actor.empty()) req.set("x-forklift-actor", endpoint.actor);
  req.body() = body;
  req.prepare_payload();
  run(ioc, [&](auto done) { http::async_write(stream, req, done); });
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  run(ioc, [&](auto done) { http::async_read(stream, buffer, res, done); });
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
    const auto timeout = endpoint.timeout;
    if (!tls) {
      beast::tcp_stream stream(ioc);
      stream.expires_after(timeout);  // for the whole call
      run(ioc, [&](auto done) { stream.async_connect(addresses, done); });
      AdminAnswer answer = exchange(ioc, stream, endpoint, method, authority, path, body);
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
    beast::get_lowest_layer(stream).expires_after(timeout);  // for the whole call
    run(ioc, [&](auto done) { beast::get_lowest_layer(stream).async_connect(addresses, done); });
    run(ioc, [&](auto done) { stream.async_handshake(ssl::stream_base::client, done); });
    AdminAnswer answer = exchange(ioc, stream, endpoint, method, authority, path, body);
    // close_notify; the server may close first, which is fine
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(1));
    stream.async_shutdown([](beast::error_code) {});
    ioc.restart();
    ioc.run();
    return answer;
  } catch (const boost::system::system_error& e) {
    if (e.code() == beast::error::timeout) {
      // The call reached the server, or may have: a change it asked for may still be going on.
      return DeadlineExceeded("no answer from " + endpoint.url + " within " +
                              std::to_string(endpoint.timeout.count()) +
                              " s (--timeout); a change may still be in progress there: check "
                              "with `forklift status`");
    }
    return Unavailable("cannot reach " + endpoint.url + ": " + e.what());
  } catch (const std::exception& e) {
    return Unavailable("cannot reach " + endpoint.url + ": " + e.what());
  }
}

}  // namespace forklift
