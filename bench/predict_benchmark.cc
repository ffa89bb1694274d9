// The model's own cost, in process: the eta model through forklift's xgboost runtime, for one row
// and for a batch, so the HTTP benchmark can be read against it.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>

#include "core/features_json.h"
#include "core/runtime_table.h"
#include "core/version_loader.h"
#include "runtimes/builtin.h"

namespace {

// Loaded per benchmark, not kept in a static: XGBoost's per-thread state is gone by the time
// static objects are destroyed, so a booster must be freed before main returns.
std::shared_ptr<forklift::LoadedModel> load_eta() {
  forklift::register_builtin_runtimes();
  auto outcome = forklift::load_version(
      std::filesystem::path(FORKLIFT_EXAMPLE_MODELS) / "eta" / "2", "eta", 2);
  if (!outcome.loaded) throw std::runtime_error(outcome.status.message());
  return outcome.loaded;
}

// Times `model` on state.range(0) random rows of eta's schema (the same rows for every model).
void time_predict(benchmark::State& state, const forklift::Model& model,
                  const forklift::Schema& schema) {
  forklift::Batch batch(schema);
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> dist(0, 30);
  for (long r = 0; r < state.range(0); ++r) {
    for (auto& v : batch.add_row()) v = dist(rng);
  }
  std::vector<forklift::Value> out;
  for (auto _ : state) {
    out.clear();
    auto s = model.predict(batch, out);
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

// eta v2 through `runtime` directly, with model.yaml's `engine` set to `engine`.
std::unique_ptr<forklift::Model> eta_through(const forklift::LoadedModel& eta, const char* runtime,
                                             const char* engine) {
  const auto dir = std::filesystem::path(FORKLIFT_EXAMPLE_MODELS) / "eta" / "2";
  forklift::LoadContext ctx{"eta", 2, dir, dir / "model.json", &eta.manifest.schema, {}};
  ctx.options = {{"nthread", "1"}};
  ctx.engine = engine;
  auto model = forklift::find_runtime(runtime)->loader(ctx);
  if (!model.ok()) throw std::runtime_error(model.status().message());
  return std::move(model).value();
}

// The XGBoost library (the xgboost runtime's `engine: library`).
void BM_EtaPredict(benchmark::State& state) {
  auto eta = load_eta();
  time_predict(state, *eta_through(*eta, "xgboost", "library"), eta->manifest.schema);
}
BENCHMARK(BM_EtaPredict)->Arg(1)->Arg(100)->Arg(1000);

// The same model and rows through forklift's own tree runtime (src/runtimes/tree): the same
// Model interface, so the two lines compare like for like.
void BM_EtaPredictNativeTree(benchmark::State& state) {
  auto eta = load_eta();
  time_predict(state, *eta_through(*eta, "tree", ""), eta->manifest.schema);
}
BENCHMARK(BM_EtaPredictNativeTree)->Arg(1)->Arg(100)->Arg(1000);

// Parsing and validating one /infer body's features into a Batch: the server's JSON cost.
void BM_EtaParseFeatures(benchmark::State& state) {
  auto model = load_eta();
  std::string body = "{";
  for (std::size_t i = 0; i < model->manifest.schema.features.size(); ++i) {
    body += (i ? ", \"" : "\"") + model->manifest.schema.features[i].name +
            "\": " + std::to_string(1.5 + static_cast<double>(i) * 3.25);
  }
  body += "}";
  simdjson::padded_string padded(body);
  simdjson::ondemand::parser parser;
  for (auto _ : state) {
    forklift::Batch batch(model->manifest.schema);
    auto doc = parser.iterate(padded);
    auto status =
        forklift::parse_feature_object(doc.get_value().value(), batch.schema(), batch.add_row());
    benchmark::DoNotOptimize(status);
  }
}
BENCHMARK(BM_EtaParseFeatures);

// The body in $FORKLIFT_BENCH_BODY (bench/run.sh passes the 1,000-row body it also sends over
// HTTP), or nothing after marking the benchmark skipped.
std::optional<std::string> bench_body(benchmark::State& state) {
  const char* path = std::getenv("FORKLIFT_BENCH_BODY");
  if (path == nullptr) {
    state.SkipWithError("FORKLIFT_BENCH_BODY is not set");
    return std::nullopt;
  }
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// Parsing a whole /infer body of many rows ({"model_id": "eta", "instances": [...]}) into a
// Batch, as the server does.
void BM_EtaParseInstances(benchmark::State& state) {
  const auto body = bench_body(state);
  if (!body) return;
  auto model = load_eta();
  simdjson::padded_string padded(*body);
  simdjson::ondemand::parser parser;
  std::size_t rows = 0;
  for (auto _ : state) {
    forklift::Batch batch(model->manifest.schema);
    auto doc = parser.iterate(padded);
    auto status = forklift::parse_instances(doc["instances"].value(), batch);
    if (!status.ok()) return state.SkipWithError(status.message().c_str());
    rows = batch.rows();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(rows));
}
BENCHMARK(BM_EtaParseInstances);

// Predicting the rows of that same body (parsed once, outside the timing), so that the HTTP
// benchmark's 1,000-row request can be set against parse + predict of exactly its rows.
void BM_EtaPredictBody(benchmark::State& state) {
  const auto body = bench_body(state);
  if (!body) return;
  auto eta = load_eta();
  simdjson::padded_string padded(*body);
  simdjson::ondemand::parser parser;
  forklift::Batch batch(eta->manifest.schema);
  auto doc = parser.iterate(padded);
  if (!forklift::parse_instances(doc["instances"].value(), batch).ok()) {
    return state.SkipWithError("cannot parse the body");
  }
  const auto library = eta_through(*eta, "xgboost", "library");
  const auto native = eta_through(*eta, "tree", "");
  const forklift::Model& model = state.range(0) == 0 ? *library : *native;
  state.SetLabel(state.range(0) == 0 ? "xgboost" : "tree");
  std::vector<forklift::Value> out;
  for (auto _ : state) {
    out.clear();
    auto s = model.predict(batch, out);
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch.rows()));
}
BENCHMARK(BM_EtaPredictBody)->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
