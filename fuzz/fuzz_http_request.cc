// Raw bytes through Beast's request parser, with the server's limits, and every request it
// completes through the data plane's router. Oracle: no crash or sanitizer report; every answer
// has a known status and a body that is valid JSON.
#include <boost/beast/http.hpp>

#include "fuzz_common.h"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static forklift::fuzz::Served served;
  http::request_parser<http::string_body> parser;
  parser.body_limit(4 * 1024 * 1024);
  parser.header_limit(16 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (used < size && !parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (ec || n == 0) break;
    used += n;
  }
  if (ec || !parser.is_done()) return 0;
  auto& req = parser.get();
  forklift::HttpRequest request;
  request.method = {req.method_string().data(), req.method_string().size()};
  request.target = {req.target().data(), req.target().size()};
  request.body = &req.body();
  if (auto auth = req.find(http::field::authorization); auth != req.end()) {
    request.authorization = {auth->value().data(), auth->value().size()};
  }
  forklift::HttpResponse response;
  response.request_id = "fuzz";
  served.router.handle(request, response);
  forklift::fuzz::check_response(response);
  return 0;
}
