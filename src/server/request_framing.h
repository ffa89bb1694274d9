// How a request's body is framed, checked before the request is used: only a Transfer-Encoding
// of exactly "chunked", and never with a Content-Length (RFC 9112 6.1, 6.3). Anything else leaves
// the body's length in doubt, and a server that guesses differently from a proxy in front of it
// takes part of one request for the next (request smuggling).
#pragma once

#include <boost/beast/http.hpp>

#include "forklift/status.h"

namespace forklift {

// Ok, or InvalidArgument saying what is wrong (the listener answers 400 and closes).
Status check_request_framing(
    const boost::beast::http::request<boost::beast::http::string_body>& req);

// The read buffer's cap for a listener with `max_header_bytes`: one whole header section (or
// chunk-size line, or trailer section) plus one read's worth of what follows it (Beast reads at
// most 64 KiB at a time; a smaller room cut a 40 KB body into several reads: measured, -10% on
// 100-row requests). A body streams through the buffer into the request, so it needs no more.
inline std::size_t read_buffer_cap(std::size_t max_header_bytes) {
  return max_header_bytes + 64 * 1024;
}

}  // namespace forklift
