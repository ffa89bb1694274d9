// Versions loaded on their first request (a memory budget, --memory-budget-mb): a version not in
// memory is published with a ColdStartModel in its place, so routing, validation and metrics see
// it as usual. Its submit() hands the request to the ColdStarter, which loads the version once
// however many requests wait for it, then passes each on to the real model; a request that waits
// longer than the bound gets Unavailable (503, Retry-After). The serving thread never waits
// (submit); predict(), which shadow copies use, does. The loader thread also passes each waiting
// request on to the real model, so a burst of them delays the next load a little.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/version_loader.h"
#include "forklift/runtime.h"
#include "observability/memory_budget_stats.h"

namespace forklift {

class ColdStarter {
 public:
  // Loads a version for good (evicting others as the budget needs) and returns it, or why not.
  using LoadFn =
      std::function<Result<std::shared_ptr<const LoadedModel>>(const std::string&, std::int64_t)>;
  ColdStarter(LoadFn load, std::chrono::milliseconds max_wait, std::size_t max_waiting,
              MemoryBudgetStats* stats);
  ~ColdStarter();  // waiting requests are answered Unavailable
  ColdStarter(const ColdStarter&) = delete;
  ColdStarter& operator=(const ColdStarter&) = delete;

  // Queues `batch` until version `version` of `model_id` is loaded. `batch` stays alive until
  // `done` is called (the caller's contract, as for Model::submit).
  void submit(const std::string& model_id, std::int64_t version, const Batch& batch,
              PredictDone done);

 private:
  using Key = std::pair<std::string, std::int64_t>;
  using Clock = std::chrono::steady_clock;
  struct Waiter {
    const Batch* batch;
    PredictDone done;
    Clock::time_point arrived;
  };
  void load_loop();
  void expire_loop();

  LoadFn load_;
  std::chrono::milliseconds max_wait_;
  std::size_t max_waiting_;
  MemoryBudgetStats* stats_;
  std::mutex mu_;
  std::condition_variable work_;     // a load was asked for, or stopping
  std::condition_variable expired_;  // a waiter arrived, or stopping
  std::map<Key, std::vector<Waiter>> waiting_;
  std::deque<Key> queue_;  // versions to load, in the order first asked
  std::size_t waiting_count_ = 0;
  bool stopping_ = false;
  std::thread loader_;
  std::thread expirer_;
};

// The model published in place of a version that is not in memory.
class ColdStartModel final : public Model {
 public:
  ColdStartModel(ColdStarter& starter, std::string model_id, std::int64_t version)
      : starter_(starter), model_id_(std::move(model_id)), version_(version) {}
  Status predict(const Batch& batch, std::vector<Value>& outputs) const override;
  void submit(const Batch& batch, PredictDone done) const override {
    starter_.submit(model_id_, version_, batch, std::move(done));
  }

 private:
  ColdStarter& starter_;
  std::string model_id_;
  std::int64_t version_;
};

// A placeholder for a version not in memory: its manifest (read, not loaded) and a
// ColdStartModel.
std::shared_ptr<LoadedModel> cold_placeholder(const Manifest& manifest, const std::string& model_id,
                                              std::int64_t version, ColdStarter& starter);

}  // namespace forklift
