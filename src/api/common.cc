#include "api/handlers.h"
#include "common/json_writer.h"

namespace forklift {

unsigned http_status(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kFailedPrecondition:  // e.g. deploying a version that failed to load
      return 409;
    case StatusCode::kInternal:
      return 500;
    case StatusCode::kDeadlineExceeded:
      return 504;
  }
  return 500;
}

void respond_error(HttpResponse& res, const Status& status) {
  res.json(http_status(status), json::error_body(status.message()));
  // 503 means "not now": overloaded, unloading, a store away. Clients and balancers may retry.
  if (res.status == 503) res.headers.emplace_back("Retry-After", "1");
}

}  // namespace forklift
