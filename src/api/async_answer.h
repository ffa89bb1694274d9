// An answer that may be ready before or after its handler returns: the inference service answers
// at once for most versions and later, on a batching thread, for a version that batches. The
// handler cannot know which, and must not block its event loop waiting.
//
//   auto answer = std::make_shared<AsyncAnswer>(res.request_id);
//   start_work(..., [answer](...) { fill answer->response(); answer->done(); });
//   answer->deliver(answer, req, res);
//
// If done() ran before deliver(), deliver fills `res` at once. Otherwise it defers the response
// (the connection's loop serves others meanwhile) and done() resumes it; on a transport that
// cannot defer, deliver waits.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "api/http_types.h"
#include "core/inference/inference_service.h"

namespace forklift {

class AsyncAnswer {
 public:
  explicit AsyncAnswer(std::string request_id);

  // What the completion fills, before calling done(); request_id is already set.
  HttpResponse& response() { return response_; }
  // Called once by the completion, from any thread, after it filled response().
  void done();
  // Called once by the handler, after starting the work. `self` is this answer.
  static void deliver(const std::shared_ptr<AsyncAnswer>& self, const HttpRequest& req,
                      HttpResponse& res);

 private:
  enum State : int { kWaiting, kDone, kDeferred };
  void move_into(HttpResponse& res);

  HttpResponse response_;
  std::atomic<int> state_{kWaiting};
  ResumeResponse resume_;              // set by deliver() before it publishes kDeferred
  std::shared_ptr<AsyncAnswer> self_;  // while deferred: kept until done() resumes
  std::mutex mu_;                      // for a handler that has to wait (no deferral)
  std::condition_variable finished_;
};

// Runs one prediction and answers `res` with what `write(result, response)` fills: at once when
// the version answers on this thread (no allocation for the answer), through an AsyncAnswer when
// it answers later. `write` must not throw.
template <class Write>
void infer_and_answer(const InferenceService& service, InferenceTarget target, Batch batch,
                      std::chrono::steady_clock::time_point start, const HttpRequest& req,
                      HttpResponse& res, Write write) {
  // The request became rows: the end of its parse span.
  if (req.trace)
    req.trace->child("parse", req.trace->start_time(), std::chrono::system_clock::now());
  if (target.answers_now()) {
    service.infer(
        std::move(target), std::move(batch), res.request_id, start,
        [&res, &write](const InferenceResult& result) { write(result, res); }, req.trace);
    return;
  }
  auto answer = std::make_shared<AsyncAnswer>(res.request_id);
  service.infer(
      std::move(target), std::move(batch), res.request_id, start,
      [answer, write](const InferenceResult& result) {
        write(result, answer->response());
        answer->done();
      },
      req.trace);
  AsyncAnswer::deliver(answer, req, res);
}

}  // namespace forklift
