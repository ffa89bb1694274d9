#include "grpc_api/repository_grpc_service.h"

#include <exception>

#include "api/admin/admin_json.h"
#include "api/admin_router.h"
#include "common/thread_priority.h"
#include "core/repository.h"
#include "grpc_api/grpc_status.h"
#include "observability/log.h"

namespace forklift::grpc_api {

RepositoryGrpcService::RepositoryGrpcService(const ApiContext& ctx, std::string token)
    : ctx_(ctx),
      token_(std::move(token)),
      // Like the admin API's changes: a few may wait, at a lower CPU priority than serving.
      changes_(std::make_unique<SerialWorker>(16, [] { lower_this_thread_priority(10); })) {}

RepositoryGrpcService::~RepositoryGrpcService() = default;

void RepositoryGrpcService::stop() {
  std::unique_ptr<SerialWorker> changes;
  {
    std::lock_guard lock(stop_mu_);
    changes = std::move(changes_);
  }
  changes.reset();  // outside the lock: it finishes the running change, answers the others
}

Status RepositoryGrpcService::actor_of(const grpc::CallbackServerContext& context,
                                       std::string& actor) const {
  const std::string_view given = metadata_value(context, "x-forklift-actor");
  if (given.empty()) {
    actor = "grpc";
    return Status::Ok();
  }
  if (given.size() > 64) return InvalidArgument("x-forklift-actor is longer than 64 characters");
  for (char c : given) {
    if (c < 0x20 || c >= 0x7f) return InvalidArgument("x-forklift-actor must be printable ASCII");
  }
  actor = std::string(given);
  return Status::Ok();
}

void RepositoryGrpcService::finish(grpc::ServerUnaryReactor* reactor,
                                   grpc::CallbackServerContext* context, GrpcMethod method,
                                   const Status& status) const {
  finish(reactor, method, to_grpc(status, context));
}

void RepositoryGrpcService::finish(grpc::ServerUnaryReactor* reactor, GrpcMethod method,
                                   const grpc::Status& answer) const {
  if (ctx_.metrics != nullptr) ctx_.metrics->count_grpc_call(method, answer.error_code());
  reactor->Finish(answer);
}

grpc::Status RepositoryGrpcService::check_token(const grpc::CallbackServerContext& context) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (token_.empty()) {
    return {grpc::StatusCode::UNAUTHENTICATED,
            "this server has no admin token; start it with --admin-token-file or "
            "FORKLIFT_ADMIN_TOKEN"};
  }
  const std::string_view authorization = metadata_value(context, "authorization");
  if (!authorization.starts_with(kBearer) ||
      !constant_time_equal(authorization.substr(kBearer.size()), token_)) {
    return {grpc::StatusCode::UNAUTHENTICATED,
            "missing or wrong admin token (metadata authorization: Bearer ...)"};
  }
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* RepositoryGrpcService::RepositoryIndex(
    grpc::CallbackServerContext* context, const repo::RepositoryIndexRequest* request,
    repo::RepositoryIndexResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (grpc::Status refused = check_token(*context); !refused.ok()) {
    finish(reactor, GrpcMethod::kRepositoryIndex, refused);
    return reactor;
  }
  Status status = Status::Ok();
  {
    try {
      const auto snapshot = ctx_.registry->snapshot();
      for (const auto& [id, m] : snapshot->models) {
        for (const auto& [v, st] : m.versions) {
          const char* state = repository_state(st.state);
          if (request->ready() && std::string_view(state) != "READY") continue;
          auto* entry = response->add_models();
          entry->set_name(id);
          entry->set_version(std::to_string(v));
          entry->set_state(state);
          entry->set_reason(st.message);
        }
      }
    } catch (const std::exception& e) {
      response->Clear();
      status = Internal(std::string("internal error: ") + e.what());
    }
  }
  finish(reactor, context, GrpcMethod::kRepositoryIndex, status);
  return reactor;
}

grpc::ServerUnaryReactor* RepositoryGrpcService::RepositoryModelLoad(
    grpc::CallbackServerContext* context, const repo::RepositoryModelLoadRequest* request,
    repo::RepositoryModelLoadResponse*) {
  return change(context, request->model_name(), true);
}

grpc::ServerUnaryReactor* RepositoryGrpcService::RepositoryModelUnload(
    grpc::CallbackServerContext* context, const repo::RepositoryModelUnloadRequest* request,
    repo::RepositoryModelUnloadResponse*) {
  return change(context, request->model_name(), false);
}

grpc::ServerUnaryReactor* RepositoryGrpcService::change(grpc::CallbackServerContext* context,
                                                        const std::string& model_name, bool load) {
  auto* reactor = context->DefaultReactor();
  const GrpcMethod method =
      load ? GrpcMethod::kRepositoryModelLoad : GrpcMethod::kRepositoryModelUnload;
  if (grpc::Status refused = check_token(*context); !refused.ok()) {
    finish(reactor, method, refused);
    return reactor;
  }
  std::string actor;
  if (Status s = actor_of(*context, actor); !s.ok()) {
    finish(reactor, context, method, s);
    return reactor;
  }
  if (!is_valid_model_id(model_name)) {
    finish(reactor, context, method, NotFound("unknown model '" + model_name.substr(0, 128) + "'"));
    return reactor;
  }
  // Answers the call exactly once: after the change, or UNAVAILABLE if the task is dropped
  // unrun (the queue is full, or the server stops first).
  struct Answer {
    Answer(const RepositoryGrpcService* s, grpc::CallbackServerContext* c,
           grpc::ServerUnaryReactor* r, GrpcMethod m)
        : service(s), context(c), reactor(r), method(m) {}
    Answer(const Answer&) = delete;
    Answer& operator=(const Answer&) = delete;
    const RepositoryGrpcService* service;
    grpc::CallbackServerContext* context;
    grpc::ServerUnaryReactor* reactor;
    GrpcMethod method;
    bool done = false;
    void operator()(const Status& s) {
      done = true;
      service->finish(reactor, context, method, s);
    }
    ~Answer() {
      if (!done) {
        service->finish(reactor, context, method,
                        Unavailable("repository changes are queued to their limit, or the server "
                                    "is stopping; try again later"));
      }
    }
  };
  auto answer = std::make_shared<Answer>(this, context, reactor, method);
  std::lock_guard lock(stop_mu_);
  if (!changes_) return reactor;  // stopping: `answer` answers UNAVAILABLE as it goes
  changes_->submit([this, answer, model_name, actor, load] {
    Status s;
    try {
      s = load ? ctx_.registry->load_model(model_name, actor)
               : ctx_.registry->unload_model(model_name, actor);
    } catch (const std::exception& e) {
      log::error("grpc_repository_change_failed", {{"model_id", model_name}, {"reason", e.what()}});
      s = Internal(std::string("internal error: ") + e.what());
    }
    // A change may have retired versions: freed here, not on a serving thread.
    ctx_.registry->collect_retired();
    (*answer)(s);
  });
  return reactor;
}

}  // namespace forklift::grpc_api
