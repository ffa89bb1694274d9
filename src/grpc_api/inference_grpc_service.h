// inference.GRPCInferenceService (Open Inference Protocol over gRPC) on forklift's core: every
// ModelInfer goes through the same InferenceService as REST (routing, splits, batching, metrics,
// events, shadows, feedback). The small calls use gRPC's callback API; ModelInfer, the hot path,
// the completion-queue API (grpc_api/infer_calls.h), whose threads decode and predict where they
// read the call, without a hop to another thread (the callback API cost about twice the CPU per
// one-row call). A version that batches answers later, from its batching thread, either way.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>

#include "api/handlers.h"
#include "open_inference_grpc.grpc.pb.h"

namespace forklift::grpc_api {

using oip = inference::GRPCInferenceService;
// ModelInfer is marked async first: a method already marked callback would keep its callback
// handler (grpcpp/impl/rpc_service_method.h).
using InferenceServiceBase = oip::WithCallbackMethod_ServerLive<oip::WithCallbackMethod_ServerReady<
    oip::WithCallbackMethod_ModelReady<oip::WithCallbackMethod_ServerMetadata<
        oip::WithCallbackMethod_ModelMetadata<oip::WithAsyncMethod_ModelInfer<oip::Service>>>>>>;

// Called exactly once with a ModelInfer's answer (its response filled when the status is OK).
using InferAnswered = std::function<void(const grpc::Status& status)>;

class InferenceGrpcService final : public InferenceServiceBase {
 public:
  explicit InferenceGrpcService(const ApiContext& ctx) : ctx_(ctx) {}

  // From now on ServerReady answers false (the listener drains).
  void stop_ready() { draining_.store(true); }

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context,
                                       const inference::ServerLiveRequest* request,
                                       inference::ServerLiveResponse* response) override;
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context,
                                        const inference::ServerReadyRequest* request,
                                        inference::ServerReadyResponse* response) override;
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override;
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* context,
                                           const inference::ServerMetadataRequest* request,
                                           inference::ServerMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* context,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override;

  // Counts a ModelInfer answered without reaching infer() (refused for memory, or cancelled).
  void count_infer(grpc::StatusCode code) const {
    if (ctx_.metrics != nullptr) ctx_.metrics->count_grpc_call(GrpcMethod::kModelInfer, code);
  }

  // ModelInfer: predicts `request` into `response` and calls `answered`, on this thread or a
  // batching thread. Never throws.
  void infer(grpc::ServerContextBase& context, const inference::ModelInferRequest& request,
             inference::ModelInferResponse* response, InferAnswered answered) const;

 private:
  // Finishes `reactor` with `status`, counted under `method` (an index of kGrpcMethods).
  void finish(grpc::ServerUnaryReactor* reactor, grpc::CallbackServerContext* context,
              GrpcMethod method, const Status& status) const;
  // infer() without the exception guard.
  void infer_unguarded(grpc::ServerContextBase& context,
                       const inference::ModelInferRequest& request,
                       inference::ModelInferResponse* response, InferAnswered& answered) const;
  // The call's trace (with the caller's traceparent metadata), or null when it is not sampled.
  std::shared_ptr<RequestTrace> trace_for(const grpc::ServerContextBase& context) const;
  // `status` as the call's answer, counted.
  grpc::Status answer(grpc::ServerContextBase& context, const Status& status) const;

  ApiContext ctx_;
  std::atomic<bool> draining_{false};
};

// The model name and version of a request: NotFound for a name that cannot be a model, and
// InvalidArgument for a version that is not a positive integer (empty: none asked).
Status parse_model_and_version(const std::string& name, const std::string& version,
                               std::optional<std::int64_t>& parsed);

}  // namespace forklift::grpc_api
