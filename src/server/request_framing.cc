#include "server/request_framing.h"

#include <string_view>

namespace forklift {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether the Transfer-Encoding fields, all of them together, say exactly "chunked": a coding
// forklift does not decode ("gzip, chunked"), one that is not last ("chunked, identity") or a
// repeated one cannot be framed safely.
bool only_chunked(const http::request<http::string_body>& req) {
  int codings = 0;
  bool chunked = false;
  for (const auto& field : req) {
    if (field.name() != http::field::transfer_encoding) continue;
    std::string_view list(field.value().data(), field.value().size());
    while (!list.empty()) {
      const auto comma = list.find(',');
      const std::string_view token = trimmed(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      if (token.empty()) continue;
      ++codings;
      chunked = beast::iequals(beast::string_view(token.data(), token.size()), "chunked");
    }
  }
  return codings == 1 && chunked;
}

}  // namespace

Status check_request_framing(const http::request<http::string_body>& req) {
  if (req.count(http::field::transfer_encoding) == 0) return Status::Ok();
  // RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing (a 1.0 proxy
  // in front would not have read it as chunked).
  if (req.version() < 11) {
    return InvalidArgument("Transfer-Encoding is not allowed in an HTTP/1.0 request");
  }
  if (!only_chunked(req)) {
    return InvalidArgument("Transfer-Encoding must be exactly 'chunked' (no other coding)");
  }
  if (req.count(http::field::content_length) > 0) {
    return InvalidArgument("a request must not have both Transfer-Encoding and Content-Length");
  }
  return Status::Ok();
}

}  // namespace forklift
