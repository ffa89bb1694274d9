// The interface between forklift and the code that turns an artifact into predictions.
//
// A runtime is registered under a name (the `runtime:` field of model.yaml). For each version that
// names it, forklift calls the runtime's loader once, on a loader thread, and then calls predict on
// the returned Model from many serving threads at once until the version is unloaded.
//
// Contract for implementers:
//  * Model::predict is called concurrently from several threads and must be thread-safe; it must
//    not keep references to the batch after it returns.
//  * Inputs have already been validated against the schema in model.yaml: every feature is present
//    with its declared type and length.
//  * predict appends exactly batch.rows() outputs of the schema's output type.
//  * Report failures as a Status (or, in the two-function form, by throwing); forklift catches
//    exceptions at this boundary and answers that request with a 500 naming the model.
//  * The Model is destroyed after the last in-flight request that uses it has finished.
//
// The simplest way to write one is two functions and a macro (see examples/surge):
//
//   struct Rules { double base; };
//   forklift::Result<Rules> load(const forklift::LoadContext& ctx);
//   forklift::Value predict(const Rules& rules, const forklift::RowView& row);
//   FORKLIFT_REGISTER_RUNTIME("surge", load, predict);
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "forklift/status.h"
#include "forklift/types.h"

namespace forklift {

// What a loader gets: where the artifact is and what the manifest says about it.
struct LoadContext {
  std::string model_id;
  std::int64_t version = 0;
  std::filesystem::path version_dir;  // <repository>/<model id>/<version>/
  std::filesystem::path artifact;     // version_dir / manifest's `artifact`
  const Schema* schema = nullptr;
  // The manifest's `runtime_options` as strings (e.g. nthread: "1").
  std::map<std::string, std::string> options;
  // The manifest's `timeout_ms` (0: none). forklift enforces it above every runtime; one that
  // predicts elsewhere (the python runtime's worker processes) uses it to stop a call that overran.
  // (Fields are only ever added at the end, so teams' aggregate initialisers keep compiling.)
  std::chrono::milliseconds timeout{0};
  // The manifest's `engine`: "auto" (or empty), "native" or "library", for runtimes that have
  // more than one way to evaluate a model (the xgboost runtime); others ignore it.
  std::string engine{};
  // The version's self-test inputs as rows (null when it has none readable), for a runtime that
  // checks one engine against another at load. Valid during the load only.
  const Batch* sample_rows = nullptr;

  std::string option(const std::string& key, const std::string& fallback) const {
    auto it = options.find(key);
    return it == options.end() ? fallback : it->second;
  }
};

// Called exactly once with a prediction's status and its outputs (empty when it failed).
using PredictDone = std::function<void(Status status, std::vector<Value> outputs)>;

class Model {
 public:
  virtual ~Model() = default;
  // Appends one output per row of `batch` to `outputs`. Thread-safe; see the contract above.
  virtual Status predict(const Batch& batch, std::vector<Value>& outputs) const = 0;

  // The asynchronous form, which forklift's serving path calls: predicts `batch` and calls `done`,
  // on this thread or on another one later. `batch` (and its schema) must stay alive until then.
  // The default predicts here and now; a model that queues requests (forklift's dynamic batching)
  // overrides it so that the caller's thread is free while a request waits. Runtimes implement
  // predict only.
  virtual void submit(const Batch& batch, PredictDone done) const {
    std::vector<Value> outputs;
    Status status = predict(batch, outputs);
    if (!status.ok()) outputs.clear();
    done(std::move(status), std::move(outputs));
  }

  // Online learning, for a model that learns from each label as it arrives (the built-in
  // `online` runtime). forklift calls learn() with the rows of a prediction and the labels sent
  // back for them (POST /feedback), from other threads than predict's: both must be safe to
  // call at once. snapshot() returns the artifact of the model as it is now, which becomes a new
  // version (its model.yaml's runtime loads it). A model that does not learn keeps the defaults.
  virtual bool learns() const { return false; }
  virtual Status learn(const Batch& /*batch*/, const std::vector<double>& /*labels*/) const {
    return FailedPrecondition("this model does not learn online");
  }
  virtual Result<std::string> snapshot() const {
    return FailedPrecondition("this model does not learn online");
  }
  // Labels learned from since it was loaded.
  virtual std::uint64_t updates() const { return 0; }

  // Which of its runtime's engines evaluates this model ("native", "library"), and why when the
  // runtime chose (a fallback's reason); empty for a runtime with one way to predict.
  struct Engine {
    std::string name;
    std::string note;
  };
  virtual Engine engine() const { return {}; }

  // Explanations, from a runtime that can give them (the native tree engine: exact TreeSHAP):
  // for each row of `batch` and each output group, each input column's contribution to the
  // row's margin, then the bias (the margin expected before any feature is known). A feature is
  // one column, a float_vector `length` of them. Contributions and bias add up to the margin,
  // before the objective's transform (a probability's log-odds, say). Thread-safe, as predict;
  // forklift calls it once, with the request's validated rows, before predict, when a request
  // asks for explanations. Return FailedPrecondition when this model cannot explain (or not that
  // many rows): forklift answers the client 400 with the message; any other error is a failure
  // (500).
  struct Explanation {
    std::size_t groups = 1;
    std::size_t columns = 0;
    std::vector<double> values;  // per row: groups * (columns + 1)
  };
  virtual Status explain(const Batch& /*batch*/, Explanation& /*out*/) const {
    return FailedPrecondition("its runtime does not explain predictions");
  }
};

using Loader = std::function<Result<std::unique_ptr<Model>>(const LoadContext&)>;

struct RuntimeInfo {
  std::string name;
  std::string platform;  // the Open Inference Protocol "platform" string, e.g. "xgboost_json"
  Loader loader;
};

// Registers a runtime; returns false if the name was taken (the first registration wins).
bool register_runtime(RuntimeInfo info);

namespace detail {

// Adapts a team's `load` and per-row `predict` functions into a Model.
template <class State, class PredictFn>
class RowModel final : public Model {
 public:
  RowModel(State state, PredictFn fn) : state_(std::move(state)), predict_(fn) {}

  Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
    for (std::size_t i = 0; i < batch.rows(); ++i)
      outputs.push_back(predict_(state_, batch.row(i)));
    return Status::Ok();
  }

 private:
  State state_;
  PredictFn predict_;
};

template <class LoadFn, class PredictFn>
bool register_two_functions(const char* name, LoadFn load, PredictFn predict) {
  using LoadResult = std::invoke_result_t<LoadFn, const LoadContext&>;
  using State = std::remove_cvref_t<decltype(std::declval<LoadResult&>().value())>;
  return register_runtime(
      RuntimeInfo{name, std::string("cpp_") + name,
                  [load, predict](const LoadContext& ctx) -> Result<std::unique_ptr<Model>> {
                    LoadResult loaded = load(ctx);
                    if (!loaded.ok()) return loaded.status();
                    return std::unique_ptr<Model>(std::make_unique<RowModel<State, PredictFn>>(
                        std::move(loaded).value(), predict));
                  }});
}

}  // namespace detail
}  // namespace forklift

#define FORKLIFT_CONCAT_INNER(a, b) a##b
#define FORKLIFT_CONCAT(a, b) FORKLIFT_CONCAT_INNER(a, b)

// Registers `load` (LoadContext -> Result<State>) and `predict` ((const State&, RowView) -> Value)
// as the runtime NAME when the program starts.
#define FORKLIFT_REGISTER_RUNTIME(NAME, LOAD, PREDICT)                                         \
  [[maybe_unused]] static const bool FORKLIFT_CONCAT(forklift_runtime_registered_, __LINE__) = \
      ::forklift::detail::register_two_functions(NAME, LOAD, PREDICT)
