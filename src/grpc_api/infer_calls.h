// ModelInfer on gRPC's completion-queue API: one queue and one thread per serving thread, each
// reading a call, decoding and predicting it on the same thread (a version that batches answers
// from its batching thread), and asking for the next.
//
// gRPC hands calls out as tags (void*). A call owns three: its arrival, its answer sent, and its
// end (AsyncNotifyWhenDone: answered, cancelled by the client, or past its deadline). It is freed
// when gRPC has given back every tag it was handed. The end tag is how a call the client already
// gave up on is not predicted, and how an answer a client never reads is cancelled after
// `answer_timeout` instead of holding its memory for ever.
#pragma once

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "grpc_api/inference_grpc_service.h"

namespace forklift::grpc_api {

class InferCalls {
 public:
  // `queues` come from the ServerBuilder (AddCompletionQueue) before the server is built.
  InferCalls(InferenceGrpcService& service,
             std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues,
             std::chrono::seconds answer_timeout, std::size_t max_held_bytes);
  ~InferCalls();
  InferCalls(const InferCalls&) = delete;
  InferCalls& operator=(const InferCalls&) = delete;

  // Starts the threads, once the server is started.
  void start();
  // After the server's Shutdown(): waits for every call it matched to end, then shuts the queues
  // down and joins. A prediction that never returns (a model without timeout_ms that hangs)
  // holds this, and so the drain: give such models a timeout_ms.
  void stop();

 private:
  struct Call;
  struct Tag {
    enum class Kind { kArrived, kAnswered, kEnded, kSweep };
    Call* call;
    Kind kind;
  };
  void ask_for_call(grpc::ServerCompletionQueue& queue);
  void serve(grpc::ServerCompletionQueue& queue);
  // sweep(), then again in a second (an alarm on the first queue).
  void sweep_every_second(grpc::ServerCompletionQueue& queue);
  void handle(Tag& tag, bool ok, grpc::ServerCompletionQueue& queue);
  void start_answer(Call& call);
  void release(Call* call);
  // Cancels calls whose answer was sent more than answer_timeout ago and never taken.
  void sweep();

  InferenceGrpcService& service_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  const std::chrono::seconds answer_timeout_;
  const std::size_t max_held_bytes_;  // requests held at once, in bytes
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable idle_;
  std::int64_t live_ = 0;                     // under mu_: calls matched and not yet freed
  std::size_t held_bytes_ = 0;                // under mu_: the requests of those calls, in bytes
  std::unordered_set<Call*> answering_;       // under mu_: answer sent, call not yet ended
  bool stopped_ = false;                      // under mu_
  std::unique_ptr<grpc::Alarm> sweep_alarm_;  // under mu_ once started
  Tag sweep_tag_{nullptr, Tag::Kind::kSweep};
};

}  // namespace forklift::grpc_api
