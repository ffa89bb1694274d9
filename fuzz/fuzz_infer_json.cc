// A request body through the JSON request paths: POST /infer and the Open Inference Protocol's
// POST /v2/models/m/infer (the first byte picks which). Oracle: no crash or sanitizer report;
// every answer has a known status and a body that is valid JSON.
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static forklift::fuzz::Served served;
  if (size == 0) return 0;
  std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  forklift::HttpRequest request;
  request.method = "POST";
  request.target = (data[0] & 1) ? "/v2/models/m/infer" : "/infer";
  request.body = &body;
  forklift::HttpResponse response;
  response.request_id = "fuzz";
  served.router.handle(request, response);
  forklift::fuzz::check_response(response);
  return 0;
}
