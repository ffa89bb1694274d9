// Small helpers shared by the data-plane and admin routers.
#pragma once

#include <string>
#include <string_view>

#include "api/http_types.h"
#include "common/json_writer.h"

namespace forklift {

// Strips `prefix` from the front of `path`; false (and `path` unchanged) if it is not there.
inline bool consume(std::string_view& path, std::string_view prefix) {
  if (!path.starts_with(prefix)) return false;
  path.remove_prefix(prefix.size());
  return true;
}

// Splits the next segment off `path` ("eta/versions/2" -> "eta", leaving "versions/2").
inline std::string_view next_segment(std::string_view& path) {
  const std::size_t slash = path.find('/');
  const std::string_view seg = path.substr(0, slash);
  path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
  return seg;
}

// 405 with an Allow header naming the methods the path takes.
inline void method_not_allowed(HttpResponse& res, std::string_view allowed) {
  res.json(405, json::error_body("method not allowed; use " + std::string(allowed)));
  res.headers.emplace_back("Allow", std::string(allowed));
}

}  // namespace forklift
