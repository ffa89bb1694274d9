#include "core/cold_start.h"

#include <future>

#include "core/runtime_table.h"
#include "observability/log.h"

namespace forklift {

ColdStarter::ColdStarter(LoadFn load, std::chrono::milliseconds max_wait, std::size_t max_waiting,
                         MemoryBudgetStats* stats)
    : load_(std::move(load)), max_wait_(max_wait), max_waiting_(max_waiting), stats_(stats) {
  loader_ = std::thread([this] { load_loop(); });
  expirer_ = std::thread([this] { expire_loop(); });
}

ColdStarter::~ColdStarter() {
  std::map<Key, std::vector<Waiter>> left;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    left.swap(waiting_);
  }
  work_.notify_all();
  expired_.notify_all();
  loader_.join();
  expirer_.join();
  for (auto& [key, waiters] : left) {
    for (auto& w : waiters) w.done(Unavailable("the server is shutting down"), {});
  }
}

void ColdStarter::submit(const std::string& model_id, std::int64_t version, const Batch& batch,
                         PredictDone done) {
  if (stats_ != nullptr) ++stats_->cold_requests;
  {
    std::unique_lock lock(mu_);
    if (!stopping_ && waiting_count_ < max_waiting_) {
      Key key{model_id, version};
      auto [it, fresh] = waiting_.try_emplace(key);
      // One load per version, however many requests wait for it.
      if (fresh) queue_.push_back(key);
      it->second.push_back(Waiter{&batch, std::move(done), Clock::now()});
      ++waiting_count_;
      lock.unlock();
      if (fresh) work_.notify_one();
      expired_.notify_one();
      return;
    }
  }
  if (stats_ != nullptr) ++stats_->cold_refused;
  done(Unavailable("version " + std::to_string(version) + " of model '" + model_id +
                   "' is not loaded and too many requests already wait for loads; retry"),
       {});
}

void ColdStarter::load_loop() {
  std::unique_lock lock(mu_);
  while (true) {
    work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    const Key key = queue_.front();
    queue_.pop_front();
    lock.unlock();
    const auto started = Clock::now();
    Result<std::shared_ptr<const LoadedModel>> loaded = load_(key.first, key.second);
    if (loaded.ok()) {
      log::info("cold_start",
                {{"model_id", key.first},
                 {"version", key.second},
                 {"load_seconds", std::chrono::duration<double>(Clock::now() - started).count()}});
    }
    lock.lock();
    std::vector<Waiter> waiters;
    if (auto it = waiting_.find(key); it != waiting_.end()) {
      waiters = std::move(it->second);
      waiting_.erase(it);
      waiting_count_ -= waiters.size();
    }
    lock.unlock();
    const auto now = Clock::now();
    for (auto& w : waiters) {
      if (stats_ != nullptr) {
        stats_->cold_start_seconds.observe(std::chrono::duration<double>(now - w.arrived).count());
      }
      if (!loaded.ok()) {
        w.done(Unavailable("version " + std::to_string(key.second) + " of model '" + key.first +
                           "' could not be loaded: " + loaded.status().message()),
               {});
        continue;
      }
      // The real model now: it predicts here, or queues (dynamic batching) and answers later.
      // The wait for the load shows as the request's queue time (its trace, Server-Timing).
      auto& call_start = current_runtime_call_start();
      const auto outer = call_start;
      call_start = std::chrono::system_clock::now();
      (*loaded)->model->submit(*w.batch, std::move(w.done));
      call_start = outer;
    }
    lock.lock();
  }
}

// Answers Unavailable to requests that waited longer than the bound; their version keeps
// loading, for the requests that come after them.
void ColdStarter::expire_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    Clock::time_point next = Clock::time_point::max();
    std::vector<std::pair<Key, Waiter>> late;
    const auto now = Clock::now();
    for (auto& [key, waiters] : waiting_) {
      for (auto it = waiters.begin(); it != waiters.end();) {
        const auto deadline = it->arrived + max_wait_;
        if (deadline <= now) {
          late.emplace_back(key, std::move(*it));
          it = waiters.erase(it);
          --waiting_count_;
        } else {
          next = std::min(next, deadline);
          ++it;
        }
      }
    }
    if (!late.empty()) {
      lock.unlock();
      for (auto& [key, w] : late) {
        if (stats_ != nullptr) {
          ++stats_->cold_timeouts;
          stats_->cold_start_seconds.observe(
              std::chrono::duration<double>(Clock::now() - w.arrived).count());
        }
        w.done(Unavailable("version " + std::to_string(key.second) + " of model '" + key.first +
                           "' is still loading (cold start); retry"),
               {});
      }
      lock.lock();
      continue;
    }
    if (next == Clock::time_point::max()) {
      expired_.wait(lock);
    } else {
      expired_.wait_until(lock, next);
    }
  }
}

Status ColdStartModel::predict(const Batch& batch, std::vector<Value>& outputs) const {
  auto promise = std::make_shared<std::promise<std::pair<Status, std::vector<Value>>>>();
  auto future = promise->get_future();
  starter_.submit(model_id_, version_, batch, [promise](Status s, std::vector<Value> out) {
    promise->set_value({std::move(s), std::move(out)});
  });
  auto [status, values] = future.get();
  if (status.ok()) outputs.insert(outputs.end(), values.begin(), values.end());
  return status;
}

std::shared_ptr<LoadedModel> cold_placeholder(const Manifest& manifest, const std::string& model_id,
                                              std::int64_t version, ColdStarter& starter) {
  auto p = std::make_shared<LoadedModel>();
  p->model_id = model_id;
  p->version = version;
  p->manifest = manifest;
  p->schema = std::make_shared<const Schema>(manifest.schema);
  const RuntimeInfo* runtime = find_runtime(manifest.runtime);
  p->platform = runtime != nullptr ? runtime->platform : manifest.runtime;
  p->model = std::make_unique<ColdStartModel>(starter, model_id, version);
  p->cold = true;
  return p;
}

}  // namespace forklift
