// Request ids: the client's (x-request-id, as Envoy sets it) when it is usable, else one made
// here. Shared by the HTTP and gRPC listeners, so a caller sees one convention on both.
#pragma once

#include <string>
#include <string_view>

namespace forklift {

// A request id unique within the process: a random per-thread prefix and a counter.
std::string make_request_id();

// `incoming` when it is 1 to 128 printable ASCII characters without quotes or backslashes (it
// is echoed in headers, logs and JSON), else a new id.
std::string request_id_for(std::string_view incoming);

}  // namespace forklift
