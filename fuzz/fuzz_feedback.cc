// A body through POST /feedback (or /v2/models/m/feedback: the first byte picks), after a
// prediction whose request id the body may name. Oracle: no crash or sanitizer report; every
// answer has a known status and a JSON body; the index never holds more than its bound.
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static forklift::fuzz::Served served;
  if (size == 0) return 0;
  std::string predict = R"({"model_id": "m", "features": {"f": 1, "i": 2, "b": true, "s": "x",
                            "v": [1, 2, 3]}})";
  forklift::HttpRequest infer;
  infer.method = "POST";
  infer.target = "/infer";
  infer.body = &predict;
  forklift::HttpResponse predicted;
  predicted.request_id = "r1";
  served.router.handle(infer, predicted);
  if (predicted.status != 200) std::abort();

  std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  forklift::HttpRequest request;
  request.method = "POST";
  request.target = (data[0] & 1) ? "/v2/models/m/feedback" : "/feedback";
  request.body = &body;
  forklift::HttpResponse response;
  response.request_id = "fuzz";
  served.router.handle(request, response);
  forklift::fuzz::check_response(response);
  return 0;
}
