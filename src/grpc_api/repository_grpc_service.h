// inference.model_repository.ModelRepositoryService (grpc_api/model_repository.proto): the model
// repository extension over gRPC, on the --grpc-port listener. Every call needs the admin token
// as `authorization: Bearer <token>` metadata (UNAUTHENTICATED otherwise, and on a server that has
// no token); `x-forklift-actor` names who acts in the audit log (default "grpc").
//
// Loads and unloads may self-test models for a while: they run one at a time on a thread of
// their own, not on gRPC's, and answer when done.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "api/handlers.h"
#include "common/serial_worker.h"
#include "model_repository.grpc.pb.h"

namespace forklift::grpc_api {

namespace repo = inference::model_repository;

class RepositoryGrpcService final : public repo::ModelRepositoryService::CallbackService {
 public:
  RepositoryGrpcService(const ApiContext& ctx, std::string token);
  ~RepositoryGrpcService() override;

  // Finishes the running change and answers the waiting ones UNAVAILABLE; later changes are
  // refused. Called while the listener shuts down, before it is destroyed.
  void stop();

  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* context,
                                            const repo::RepositoryIndexRequest* request,
                                            repo::RepositoryIndexResponse* response) override;
  grpc::ServerUnaryReactor* RepositoryModelLoad(
      grpc::CallbackServerContext* context, const repo::RepositoryModelLoadRequest* request,
      repo::RepositoryModelLoadResponse* response) override;
  grpc::ServerUnaryReactor* RepositoryModelUnload(
      grpc::CallbackServerContext* context, const repo::RepositoryModelUnloadRequest* request,
      repo::RepositoryModelUnloadResponse* response) override;

 private:
  // OK when the call carries the admin token, else UNAUTHENTICATED.
  grpc::Status check_token(const grpc::CallbackServerContext& context) const;
  // Who acts, for the audit log: x-forklift-actor, or "grpc".
  Status actor_of(const grpc::CallbackServerContext& context, std::string& actor) const;
  // Loads or unloads `model_name` on changes_, answering when done.
  grpc::ServerUnaryReactor* change(grpc::CallbackServerContext* context,
                                   const std::string& model_name, bool load);
  void finish(grpc::ServerUnaryReactor* reactor, grpc::CallbackServerContext* context,
              GrpcMethod method, const Status& status) const;
  void finish(grpc::ServerUnaryReactor* reactor, GrpcMethod method,
              const grpc::Status& answer) const;

  ApiContext ctx_;
  std::string token_;
  std::mutex stop_mu_;                     // stop() may run while a call is being queued
  std::unique_ptr<SerialWorker> changes_;  // under stop_mu_
};

}  // namespace forklift::grpc_api
