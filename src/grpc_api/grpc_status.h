// forklift's Status as a gRPC status. UNAVAILABLE (shed for load, not ready, stopping) carries
// "retry in 1 s" twice over: the `grpc-retry-pushback-ms` trailer gRPC's own retry policy reads,
// and a google.rpc.RetryInfo in the rich error details (grpc-status-details-bin).
#pragma once

#include <grpcpp/grpcpp.h>

#include <string_view>

#include "forklift/status.h"

namespace forklift::grpc_api {

grpc::StatusCode grpc_code(StatusCode code);

// The caller's metadata value for `key` (lowercase), empty when absent; valid while the call is.
std::string_view metadata_value(const grpc::ServerContextBase& context, const char* key);

// `status` for a gRPC answer; `context` (may be null) gets the pushback trailer when it is
// UNAVAILABLE. Messages are cut at 1,000 bytes.
grpc::Status to_grpc(const Status& status, grpc::ServerContextBase* context);

}  // namespace forklift::grpc_api
