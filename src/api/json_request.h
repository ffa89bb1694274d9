// Shared helpers for parsing a JSON request body with simdjson's On Demand API.
#pragma once

#include <simdjson.h>

#include <string>

#include "forklift/status.h"

namespace forklift {

// A per-thread parser (parsers are not thread-safe and are expensive to create).
simdjson::ondemand::parser& thread_parser();

// Pads `body` in place (simdjson reads up to SIMDJSON_PADDING bytes past the end) and starts
// iterating over it. The document refers to `body`, which must outlive it.
Status start_document(std::string& body, simdjson::ondemand::document& doc);

}  // namespace forklift
