#include "grpc_api/inference_grpc_service.h"

#include <chrono>
#include <exception>
#include <string>

#include "common/request_id.h"
#include "core/repository.h"
#include "core/tensor_rows.h"
#include "grpc_api/grpc_status.h"
#include "grpc_api/oip_tensors.h"
#include "observability/log.h"

namespace forklift::grpc_api {
namespace {

using enum GrpcMethod;

constexpr const char* kServerVersion = FORKLIFT_VERSION;

// The caller's x-request-id metadata when usable, else a new id.
std::string request_id_of(const grpc::ServerContextBase& context) {
  // request_id_for makes a new id for an empty (absent) one.
  return request_id_for(metadata_value(context, "x-request-id"));
}

void add_tensor_metadata(inference::ModelMetadataResponse::TensorMetadata* t,
                         const std::string& name, ValueType type, std::size_t length) {
  t->set_name(name);
  t->set_datatype(datatype_name(type));
  t->add_shape(-1);
  if (type == ValueType::kFloatVector) t->add_shape(static_cast<std::int64_t>(length));
}

}  // namespace

Status parse_model_and_version(const std::string& name, const std::string& version,
                               std::optional<std::int64_t>& parsed) {
  if (!is_valid_model_id(name)) return NotFound("unknown model '" + name.substr(0, 128) + "'");
  if (version.empty()) return Status::Ok();
  const std::int64_t v = parse_version(version);
  if (v < 0) {
    return InvalidArgument("version '" + version.substr(0, 32) + "' is not a positive integer");
  }
  parsed = v;
  return Status::Ok();
}

std::shared_ptr<RequestTrace> InferenceGrpcService::trace_for(
    const grpc::ServerContextBase& context) const {
  if (ctx_.tracer == nullptr) return nullptr;
  auto trace = start_request_trace(
      ctx_.tracer, metadata_value(context, "traceparent"), metadata_value(context, "tracestate"),
      "inference.GRPCInferenceService/ModelInfer", std::chrono::system_clock::now(), false);
  if (trace && trace->sampled()) {
    // OpenTelemetry's RPC conventions.
    trace->add_attribute("rpc.system", std::string("grpc"));
    trace->add_attribute("rpc.service", std::string("inference.GRPCInferenceService"));
    trace->add_attribute("rpc.method", std::string("ModelInfer"));
  }
  return trace;
}

void InferenceGrpcService::finish(grpc::ServerUnaryReactor* reactor,
                                  grpc::CallbackServerContext* context, GrpcMethod method,
                                  const Status& status) const {
  const grpc::Status answer = to_grpc(status, context);
  if (ctx_.metrics != nullptr) ctx_.metrics->count_grpc_call(method, answer.error_code());
  reactor->Finish(answer);
}

grpc::ServerUnaryReactor* InferenceGrpcService::ServerLive(
    grpc::CallbackServerContext* context, const inference::ServerLiveRequest*,
    inference::ServerLiveResponse* response) {
  auto* reactor = context->DefaultReactor();
  response->set_live(true);
  finish(reactor, context, kServerLive, Status::Ok());
  return reactor;
}

grpc::ServerUnaryReactor* InferenceGrpcService::ServerReady(
    grpc::CallbackServerContext* context, const inference::ServerReadyRequest*,
    inference::ServerReadyResponse* response) {
  auto* reactor = context->DefaultReactor();
  response->set_ready(!draining_.load() && ctx_.registry->snapshot()->ready());
  finish(reactor, context, kServerReady, Status::Ok());
  return reactor;
}

grpc::ServerUnaryReactor* InferenceGrpcService::ModelReady(
    grpc::CallbackServerContext* context, const inference::ModelReadyRequest* request,
    inference::ModelReadyResponse* response) {
  auto* reactor = context->DefaultReactor();
  std::optional<std::int64_t> version;
  Status status = parse_model_and_version(request->name(), request->version(), version);
  if (status.ok()) {
    const auto ready = ctx_.registry->snapshot()->model_ready(request->name(), version);
    if (ready.ok()) {
      response->set_ready(*ready);
    } else {
      status = ready.status();
    }
  }
  finish(reactor, context, kModelReady, status);
  return reactor;
}

grpc::ServerUnaryReactor* InferenceGrpcService::ServerMetadata(
    grpc::CallbackServerContext* context, const inference::ServerMetadataRequest*,
    inference::ServerMetadataResponse* response) {
  auto* reactor = context->DefaultReactor();
  response->set_name("forklift");
  response->set_version(kServerVersion);
  response->add_extensions("model_repository");
  finish(reactor, context, kServerMetadata, Status::Ok());
  return reactor;
}

grpc::ServerUnaryReactor* InferenceGrpcService::ModelMetadata(
    grpc::CallbackServerContext* context, const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  auto* reactor = context->DefaultReactor();
  std::optional<std::int64_t> version;
  Status status = parse_model_and_version(request->name(), request->version(), version);
  if (status.ok()) {
    const auto snapshot = ctx_.registry->snapshot();
    auto resolved = snapshot->resolve(request->name(), version);
    if (!resolved.ok()) {
      status = resolved.status();
    } else {
      const LoadedModel& model = **resolved;
      const ModelState& state = snapshot->models.find(request->name())->second;
      response->set_name(model.model_id);
      for (const std::int64_t v : state.servable_versions()) {
        response->add_versions(std::to_string(v));
      }
      response->set_platform(model.platform);
      const Schema& schema = model.manifest.schema;
      for (const FeatureSpec& f : schema.features) {
        add_tensor_metadata(response->add_inputs(), f.name, f.type, f.length);
      }
      add_tensor_metadata(response->add_outputs(), schema.output.name, schema.output.type,
                          schema.output.length);
    }
  }
  finish(reactor, context, kModelMetadata, status);
  return reactor;
}

grpc::Status InferenceGrpcService::answer(grpc::ServerContextBase& context,
                                          const Status& status) const {
  grpc::Status out = to_grpc(status, &context);
  if (ctx_.metrics != nullptr) ctx_.metrics->count_grpc_call(kModelInfer, out.error_code());
  return out;
}

void InferenceGrpcService::infer(grpc::ServerContextBase& context,
                                 const inference::ModelInferRequest& request,
                                 inference::ModelInferResponse* response,
                                 InferAnswered answered) const {
  // Shared by the prediction's completion and the catch below, so that the call is answered
  // exactly once whichever of them gets there.
  struct Once {
    explicit Once(InferAnswered f) : fn(std::move(f)) {}
    void operator()(const grpc::Status& status) {
      if (!done.exchange(true)) fn(status);
    }
    InferAnswered fn;
    std::atomic<bool> done{false};
  };
  auto once = std::make_shared<Once>(std::move(answered));
  InferAnswered guarded = [once](const grpc::Status& status) { (*once)(status); };
  try {
    infer_unguarded(context, request, response, guarded);
  } catch (const std::exception& e) {
    // Nothing may cross the request boundary (allocation is what can throw here).
    log::error("grpc_request_failed", {{"reason", e.what()}});
    (*once)(answer(context, Internal("internal error")));
  }
}

void InferenceGrpcService::infer_unguarded(grpc::ServerContextBase& context,
                                           const inference::ModelInferRequest& request,
                                           inference::ModelInferResponse* response,
                                           InferAnswered& answered) const {
  const auto start = std::chrono::steady_clock::now();
  std::shared_ptr<RequestTrace> trace = trace_for(context);
  if (trace) {
    // The server span ends with the call's status code.
    answered = [trace, inner = std::move(answered)](const grpc::Status& status) {
      trace->finish();
      if (trace->sampled()) {
        trace->add_attribute("rpc.grpc.status_code", std::int64_t{status.error_code()});
        const auto code = status.error_code();
        if (code == grpc::StatusCode::INTERNAL || code == grpc::StatusCode::UNAVAILABLE ||
            code == grpc::StatusCode::DEADLINE_EXCEEDED || code == grpc::StatusCode::UNKNOWN) {
          trace->set_error(status.error_message().substr(0, 200));
        }
      }
      inner(status);
    };
  }
  if (context.deadline() <= std::chrono::system_clock::now()) {
    return answered(answer(context, Status(StatusCode::kDeadlineExceeded,
                                           "the call's deadline passed before it was read")));
  }
  std::optional<std::int64_t> version;
  if (Status s = parse_model_and_version(request.model_name(), request.model_version(), version);
      !s.ok()) {
    return answered(answer(context, s));
  }
  // The id comes back in the answer: a large one would make every answer large.
  if (request.id().size() > 256) {
    return answered(answer(context, InvalidArgument("'id' is longer than 256 bytes")));
  }
  DecodedInferRequest decoded;
  if (Status s = decode_infer_request(request, decoded); !s.ok()) {
    return answered(answer(context, s));
  }
  auto target = ctx_.inference->route(request.model_name(), version, decoded.experiment_key);
  if (!target.ok()) return answered(answer(context, target.status()));
  Batch batch(target->schema());
  Status status = check_requested_outputs(decoded.requested_outputs, target->model->schema->output,
                                          target->model->model_id);
  if (status.ok()) status = tensors_to_batch(decoded.inputs, batch);
  if (!status.ok()) {
    return answered(answer(context, ctx_.inference->refuse(*target, status, start)));
  }
  decoded.inputs.clear();  // the rows are in `batch` now
  std::string request_id = request_id_of(context);
  if (trace) {
    trace->child("parse", trace->start_time(), std::chrono::system_clock::now());
    if (trace->sampled()) {
      trace->add_attribute("forklift.request_id", request_id);
      trace->add_attribute("forklift.model.id", target->model->model_id);
      trace->add_attribute("forklift.model.version", target->model->version);
    }
  }
  const bool raw = decoded.raw;
  context.AddInitialMetadata("x-request-id", request_id);
  response->set_id(request.id().empty() ? request_id : request.id());
  ctx_.inference->infer(
      std::move(target).value(), std::move(batch), std::move(request_id), start,
      [this, &context, response, answered = std::move(answered),
       raw](const InferenceResult& result) {
        Status outcome = result.status;
        if (outcome.ok()) {
          try {
            response->set_model_name(result.model.model_id);
            response->set_model_version(std::to_string(result.model.version));
            encode_outputs(result.model.schema->output, result.outputs, raw, *response);
          } catch (const std::exception& e) {
            response->Clear();
            outcome = Internal(std::string("could not encode the answer: ") + e.what());
          }
        }
        answered(answer(context, outcome));
      },
      std::move(trace));
}

}  // namespace forklift::grpc_api
