#include "grpc_api/grpc_listener.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "grpc_api/infer_calls.h"
#include "grpc_api/inference_grpc_service.h"
#include "grpc_api/repository_grpc_service.h"

namespace forklift::grpc_api {

struct GrpcListener::Impl {
  Impl(GrpcListenerOptions o, const ApiContext& ctx)
      : options(std::move(o)), inference(ctx), repository(ctx, options.admin_token) {}

  GrpcListenerOptions options;
  InferenceGrpcService inference;
  RepositoryGrpcService repository;
  std::unique_ptr<grpc::Server> server;  // after the services: destroyed before them
  std::unique_ptr<InferCalls> infer_calls;
  int port = 0;
  bool drained = false;
};

GrpcListener::GrpcListener(GrpcListenerOptions options, const ApiContext& ctx)
    : impl_(std::make_unique<Impl>(std::move(options), ctx)) {}

GrpcListener::~GrpcListener() {
  if (impl_->server && !impl_->drained) drain(std::chrono::milliseconds(0));
}

namespace {

Result<std::string> read_pem(const std::string& file, const char* what) {
  constexpr std::uintmax_t kMaxPemBytes = 1 << 20;
  const auto fail = [&](const std::string& why) -> Result<std::string> {
    return InvalidArgument(std::string("cannot use the gRPC listener's TLS ") + what + " '" + file +
                           "': " + why);
  };
  if (file.empty()) return fail("TLS needs both a certificate and a private key file");
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(file, ec);
  if (ec) return fail(ec.message());
  if (size > kMaxPemBytes) return fail("larger than 1 MiB");
  std::ifstream in(file, std::ios::binary);
  std::string text(static_cast<std::size_t>(size), '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size))) return fail("unreadable");
  return text;
}

}  // namespace

Status GrpcListener::start() {
  const GrpcListenerOptions& o = impl_->options;
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
    auto cert = read_pem(o.tls_cert_file, "certificate");
    if (!cert.ok()) return cert.status();
    auto key = read_pem(o.tls_key_file, "key");
    if (!key.ok()) return key.status();
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({std::move(key).value(), std::move(cert).value()});
    credentials = grpc::SslServerCredentials(ssl);
  }
  const std::string address =
      (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host) + ":" +
      std::to_string(o.port);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, credentials, &impl_->port);
  builder.RegisterService(&impl_->inference);
  builder.RegisterService(&impl_->repository);
  const int max_message = static_cast<int>(std::min<std::size_t>(o.max_message_bytes, INT32_MAX));
  builder.SetMaxReceiveMessageSize(max_message);
  builder.SetMaxSendMessageSize(max_message);
  // No compressed requests: gRPC inflates a message before checking its size, so 1 MB of gzip
  // could become 1 GB of memory. Calls sent compressed are refused (UNIMPLEMENTED).
  builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_DEFLATE, false);
  builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_GZIP, false);
  // A connection that never completes its handshake, or idles, gives its descriptor back.
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             static_cast<int>(o.answer_timeout.count() * 1000));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             static_cast<int>(o.idle_timeout.count() * 1000));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             static_cast<int>(o.max_concurrent_streams));
  // A 1,000-row request is ~64 KB: with HTTP/2's default 64 KB window it would wait for window
  // updates on the way in. 1 MiB per stream lets a large request arrive in one flight (memory
  // stays bounded by the resource quota below).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1 << 20);
  // Connections that hold a stream idle are still pinged; dead peers are dropped.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  grpc::ResourceQuota quota("forklift-grpc");
  quota.Resize(o.max_memory_bytes);
  builder.SetResourceQuota(quota);
  unsigned threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  for (unsigned i = 0; i < threads; ++i) queues.push_back(builder.AddCompletionQueue());
  impl_->server = builder.BuildAndStart();
  impl_->infer_calls = std::make_unique<InferCalls>(impl_->inference, std::move(queues),
                                                    o.answer_timeout, o.max_memory_bytes);
  if (!impl_->server || impl_->port == 0) {
    impl_->server.reset();
    return Unavailable(
        "cannot listen for gRPC on " + address +
        " (the port is taken, the address is not this machine's, or the TLS files are not a "
        "certificate and its key)");
  }
  impl_->infer_calls->start();
  return Status::Ok();
}

std::uint16_t GrpcListener::port() const {
  return static_cast<std::uint16_t>(impl_->port);
}

void GrpcListener::drain(std::chrono::milliseconds grace) {
  if (!impl_->server || impl_->drained) return;
  impl_->drained = true;
  impl_->inference.stop_ready();
  // Repository changes first: the running one finishes and is answered, the waiting ones are
  // answered UNAVAILABLE and never applied (a change must not land after its caller was told
  // it failed).
  impl_->repository.stop();
  impl_->server->Shutdown(std::chrono::system_clock::now() + grace);
  impl_->infer_calls->stop();
  impl_->server->Wait();
}

}  // namespace forklift::grpc_api
