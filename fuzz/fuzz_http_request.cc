// Raw bytes through Beast's request parser, with the server's limits and its capped read buffer
// (chunk-size lines, extensions and trailers included), its framing check (Transfer-Encoding), and
// every request it completes through the data plane's router. Oracle: no crash or sanitizer
// report; no element the parser needs whole outgrows the buffer cap unnoticed; every answer has a
// known status and a body that is valid JSON.
#include <algorithm>
#include <boost/beast/http.hpp>

#include "fuzz_common.h"
#include "server/request_framing.h"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static forklift::fuzz::Served served;
  http::request_parser<http::string_body> parser;
  parser.body_limit(4 * 1024 * 1024);
  parser.header_limit(16 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  std::size_t used = 0;
  // As the listener reads: the parser sees at most the buffer's cap of unconsumed bytes; when it
  // needs more than that to make progress, the listener answers 431 and closes.
  const std::size_t cap = forklift::read_buffer_cap(16 * 1024);
  while (used < size && !parser.is_done()) {
    const std::size_t window = std::min(cap, size - used);
    const std::size_t n = parser.put(boost::asio::buffer(data + used, window), ec);
    if (ec == http::error::need_more) {
      if (window == cap) return 0;  // the buffer is full and still no progress: refused
      break;                        // the input ended mid-request
    }
    if (ec || n == 0) break;
    used += n;
  }
  if (ec || !parser.is_done()) return 0;
  auto& req = parser.get();
  if (!forklift::check_request_framing(req).ok()) return 0;  // answered 400 and closed
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
