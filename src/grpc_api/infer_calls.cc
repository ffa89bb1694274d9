#include "grpc_api/infer_calls.h"

#include <algorithm>
#include <atomic>
#include <deque>

#include "common/tsan_annotations.h"

namespace forklift::grpc_api {

// Calls asked for ahead, per queue: calls that arrive while the threads predict are matched (and
// so answered during a drain, and seen when their client cancels them) instead of waiting
// unmatched inside gRPC.
constexpr int kCallsAskedAhead = 64;

struct InferCalls::Call {
  grpc::ServerContext context;
  inference::ModelInferRequest request;
  inference::ModelInferResponse response;
  grpc::ServerAsyncResponseWriter<inference::ModelInferResponse> responder{&context};
  Tag arrived{this, Tag::Kind::kArrived};
  Tag answered{this, Tag::Kind::kAnswered};
  Tag ended{this, Tag::Kind::kEnded};
  // Tags gRPC holds; the call is freed when the last comes back. The answered tag is handed out
  // by whichever thread answers (a batching thread), the others on the queue's thread.
  std::atomic<int> held{0};
  bool matched = false;     // a client's call arrived in it; the queue's thread only
  std::size_t bytes = 0;    // the request's size, counted in InferCalls::held_bytes_
  bool ended_seen = false;  // written under InferCalls::mu_
  std::chrono::steady_clock::time_point answer_sent{};  // under InferCalls::mu_
};

InferCalls::InferCalls(InferenceGrpcService& service,
                       std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues,
                       std::chrono::seconds answer_timeout, std::size_t max_held_bytes)
    : service_(service),
      queues_(std::move(queues)),
      answer_timeout_(answer_timeout),
      max_held_bytes_(max_held_bytes) {}

InferCalls::~InferCalls() {
  stop();
}

void InferCalls::start() {
  if (!queues_.empty()) {
    sweep_alarm_ = std::make_unique<grpc::Alarm>();
    sweep_alarm_->Set(queues_.front().get(),
                      std::chrono::system_clock::now() + std::chrono::seconds(1), &sweep_tag_);
  }
  for (std::size_t i = 0; i < queues_.size(); ++i) {
    for (int n = 0; n < kCallsAskedAhead; ++n) ask_for_call(*queues_[i]);
    threads_.emplace_back([this, q = queues_[i].get()] { serve(*q); });
  }
}

void InferCalls::ask_for_call(grpc::ServerCompletionQueue& queue) {
  // Owned by its tags until gRPC has handed them all back (release()).
  Call* call = std::make_unique<Call>().release();
  call->held.store(2);   // arrived, ended
  happens_before(call);  // gRPC hands its tags back on a thread of its choosing
  call->context.AsyncNotifyWhenDone(&call->ended);
  service_.RequestModelInfer(&call->context, &call->request, &call->responder, &queue, &queue,
                             &call->arrived);
}

// On the queue's thread (every tag comes back there).
void InferCalls::release(Call* call) {
  if (call->held.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  happens_after(call);
  const bool matched = call->matched;
  const std::size_t bytes = call->bytes;
  std::unique_ptr<Call> owned(call);  // made by make_unique().release() in ask_for_call
  owned.reset();
  if (!matched) return;
  std::lock_guard lock(mu_);
  held_bytes_ -= bytes;
  if (--live_ == 0) idle_.notify_all();
}

void InferCalls::sweep_every_second(grpc::ServerCompletionQueue& queue) {
  sweep();
  std::lock_guard lock(mu_);
  if (stopped_) return;
  sweep_alarm_ = std::make_unique<grpc::Alarm>();
  sweep_alarm_->Set(&queue, std::chrono::system_clock::now() + std::chrono::seconds(1),
                    &sweep_tag_);
}

void InferCalls::serve(grpc::ServerCompletionQueue& queue) {
  // Calls that arrived and wait for this thread. One is predicted per round; every round first
  // takes whatever else the queue holds, so a call whose client gives up meanwhile (its end tag)
  // is seen before its turn, and not predicted.
  std::deque<Tag*> arrived;
  for (;;) {
    void* tag = nullptr;
    bool ok = false;
    // Block only when nothing waits (a zero deadline only polls).
    grpc::CompletionQueue::NextStatus status;
    if (arrived.empty()) {
      status = queue.Next(&tag, &ok) ? grpc::CompletionQueue::GOT_EVENT
                                     : grpc::CompletionQueue::SHUTDOWN;
    } else {
      status = queue.AsyncNext(&tag, &ok, gpr_time_0(GPR_CLOCK_MONOTONIC));
    }
    while (status == grpc::CompletionQueue::GOT_EVENT) {
      auto* t = static_cast<Tag*>(tag);
      if (t->kind == Tag::Kind::kSweep) {
        if (ok) sweep_every_second(queue);  // not ok: cancelled by stop()
      } else if (t->kind == Tag::Kind::kArrived && ok) {
        arrived.push_back(t);
      } else {
        handle(*t, ok, queue);
      }
      status = queue.AsyncNext(&tag, &ok, gpr_time_0(GPR_CLOCK_MONOTONIC));
    }
    if (status == grpc::CompletionQueue::SHUTDOWN && arrived.empty()) return;
    if (!arrived.empty()) {
      Tag* next = arrived.front();
      arrived.pop_front();
      handle(*next, true, queue);
    }
  }
}

void InferCalls::handle(Tag& tag, bool ok, grpc::ServerCompletionQueue& queue) {
  Call* call = tag.call;
  happens_after(call);
  switch (tag.kind) {
    case Tag::Kind::kArrived: {
      if (!ok) {
        // The server is shutting down: no call came, and its end tag never will.
        call->held.fetch_sub(1);
        return release(call);
      }
      call->matched = true;
      call->bytes = call->request.ByteSizeLong();
      bool over_budget = false;
      {
        std::lock_guard lock(mu_);
        ++live_;
        // The requests held at once, all connections together, stay within the memory budget:
        // beyond it a call is refused at once and its request freed.
        over_budget = held_bytes_ + call->bytes > max_held_bytes_ && held_bytes_ > 0;
        held_bytes_ += call->bytes;
      }
      ask_for_call(queue);
      call->held.fetch_add(1);  // its answer's tag, handed out below or by the answering thread
      if (over_budget) {
        call->request.Clear();
        service_.count_infer(grpc::StatusCode::RESOURCE_EXHAUSTED);
        call->responder.FinishWithError(
            grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                         "requests being answered hold the listener's memory budget; retry later"),
            &call->answered);
        return release(call);
      }
      if (call->ended_seen || call->context.IsCancelled()) {
        // The client gave up (reset, cancelled, past its deadline) before it was read: not
        // predicted. gRPC still wants an answer to close the call.
        service_.count_infer(grpc::StatusCode::CANCELLED);
        call->responder.FinishWithError(grpc::Status::CANCELLED, &call->answered);
        return release(call);
      }
      start_answer(*call);
      return release(call);
    }
    case Tag::Kind::kAnswered:
      return release(call);
    case Tag::Kind::kSweep:
      return;  // taken by serve()
    case Tag::Kind::kEnded: {
      std::lock_guard lock(mu_);
      call->ended_seen = true;
      answering_.erase(call);
    }
      return release(call);
  }
}

void InferCalls::start_answer(Call& call) {
  Call* c = &call;
  service_.infer(c->context, c->request, &c->response, [this, c](const grpc::Status& status) {
    {
      std::lock_guard lock(mu_);
      if (!c->ended_seen) {
        c->answer_sent = std::chrono::steady_clock::now();
        answering_.insert(c);
      }
    }
    happens_before(c);  // the response, read and freed elsewhere
    c->responder.Finish(c->response, status, &c->answered);
  });
}

void InferCalls::sweep() {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  for (Call* call : answering_) {
    // A client that does not read its answer (an HTTP/2 window it never opens) would hold the
    // answer's memory for as long as it keeps the connection.
    if (now - call->answer_sent > answer_timeout_) call->context.TryCancel();
  }
}

void InferCalls::stop() {
  {
    std::unique_lock lock(mu_);
    if (stopped_ || threads_.empty()) return;
    stopped_ = true;
    // The alarm's tag comes back (not ok) before the queue can shut down.
    if (sweep_alarm_) sweep_alarm_->Cancel();
    idle_.wait(lock, [this] { return live_ == 0; });
  }
  for (auto& queue : queues_) queue->Shutdown();
  for (auto& t : threads_) t.join();
}

}  // namespace forklift::grpc_api
