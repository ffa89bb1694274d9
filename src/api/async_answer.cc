#include "api/async_answer.h"

namespace forklift {

AsyncAnswer::AsyncAnswer(std::string request_id) {
  response_.request_id = std::move(request_id);
}

void AsyncAnswer::move_into(HttpResponse& res) {
  res.status = response_.status;
  res.content_type = std::move(response_.content_type);
  res.body = std::move(response_.body);
  for (auto& header : response_.headers) res.headers.push_back(std::move(header));
  res.model_id = std::move(response_.model_id);
  res.model_version = response_.model_version;
}

void AsyncAnswer::done() {
  // acq_rel: publishes response_ to deliver(), and sees the resume_ that deliver() wrote.
  if (state_.exchange(kDone, std::memory_order_acq_rel) == kDeferred) {
    std::shared_ptr<AsyncAnswer> self = std::move(self_);
    resume_([self](HttpResponse& res) { self->move_into(res); });
    return;
  }
  // A handler may be waiting (a transport that cannot defer); taking the lock before notifying
  // means it cannot miss this.
  { std::lock_guard lock(mu_); }
  finished_.notify_all();
}

void AsyncAnswer::deliver(const std::shared_ptr<AsyncAnswer>& self, const HttpRequest& req,
                          HttpResponse& res) {
  if (self->state_.load(std::memory_order_acquire) == kDone) return self->move_into(res);
  if (req.deferral == nullptr) {
    std::unique_lock lock(self->mu_);
    self->finished_.wait(lock,
                         [&] { return self->state_.load(std::memory_order_acquire) == kDone; });
    return self->move_into(res);
  }
  self->resume_ = req.deferral->defer(ResponseDeferral::kReadTimeout);
  self->self_ = self;
  if (self->state_.exchange(kDeferred, std::memory_order_acq_rel) == kDone) {
    // done() ran while the deferral was being set up: resume here.
    self->self_.reset();
    self->resume_([self](HttpResponse& out) { self->move_into(out); });
  }
}

}  // namespace forklift
