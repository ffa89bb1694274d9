#include "api/json_request.h"

namespace forklift {

simdjson::ondemand::parser& thread_parser() {
  thread_local simdjson::ondemand::parser parser;
  return parser;
}

Status start_document(std::string& body, simdjson::ondemand::document& doc) {
  const std::size_t length = body.size();
  if (length == 0) return InvalidArgument("the request body is empty; send a JSON object");
  body.append(simdjson::SIMDJSON_PADDING, '\0');
  auto error = thread_parser().iterate(body.data(), length, body.size()).get(doc);
  if (error)
    return InvalidArgument(std::string("malformed JSON: ") + simdjson::error_message(error));
  return Status::Ok();
}

}  // namespace forklift
