// forklift's native tree engine beside the XGBoost C API, on the same model file and the same rows,
// one thread each: one row, and 1,000 rows in one call. Also the load-time engine check's cost.
//
//   tree_benchmark [NAME=]MODEL.json ... [--benchmark_* flags]
//
// Rows are drawn around each feature's own thresholds (so they go both ways at every split), a
// twentieth of the values missing. bench/tree_engines.py runs it and writes the table.
#include <benchmark/benchmark.h>
#include <xgboost/c_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtimes/tree/complete_rows_simd.h"
#include "runtimes/tree/engine_check.h"
#include "runtimes/tree/forest.h"
#include "runtimes/tree/tree_shap.h"
#include "runtimes/xgboost_library.h"

namespace {

struct BoosterDeleter {
  void operator()(void* h) const { XGBoosterFree(h); }
};
struct DMatrixDeleter {
  void operator()(void* h) const { XGDMatrixFree(h); }
};

struct Subject {
  std::string name;
  forklift::tree::Forest forest;
  std::unique_ptr<void, BoosterDeleter> booster;
  std::unique_ptr<void, DMatrixDeleter> proxy;  // reused, as forklift's xgboost runtime does
  std::vector<float> rows;                      // kRows rows
};

constexpr std::size_t kRows = 1000;

std::vector<float> rows_around_thresholds(const forklift::tree::Forest& f, std::size_t n) {
  std::vector<std::vector<float>> thresholds(f.num_features);
  for (const auto& node : f.nodes) {
    if (node.feature >= 0) thresholds[static_cast<std::size_t>(node.feature)].push_back(node.value);
  }
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> unit(0, 1);
  std::vector<float> rows(n * f.num_features);
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t c = 0; c < f.num_features; ++c) {
      const auto& t = thresholds[c];
      float v = t.empty() ? unit(rng) : t[rng() % t.size()] * (0.9f + 0.2f * unit(rng));
      if (unit(rng) < 0.05f) v = NAN;
      rows[r * f.num_features + c] = v;
    }
  }
  return rows;
}

// XGBoost's in-place prediction on `n` rows, the result copied out as forklift's runtime does.
void xgboost_predict(const Subject& s, std::size_t n, std::vector<float>& out) {
  const float* result = nullptr;
  std::size_t total = 0;
  const forklift::Status status = forklift::xgboost_predict(
      s.booster.get(), s.proxy.get(), s.rows.data(), n, s.forest.num_features,
      forklift::tree::LibraryOutput::kPredictions, result, total);
  if (!status.ok()) {
    std::fprintf(stderr, "XGBoost: %s\n", status.message().c_str());
    std::exit(1);
  }
  out.assign(result, result + total);
}

std::unique_ptr<Subject> load(const std::string& arg) {
  auto s = std::make_unique<Subject>();
  const auto eq = arg.find('=');
  const std::string path = eq == std::string::npos ? arg : arg.substr(eq + 1);
  s->name =
      eq == std::string::npos ? std::filesystem::path(path).stem().string() : arg.substr(0, eq);
  auto forest = forklift::tree::load_forest(path);
  if (!forest.ok()) {
    std::fprintf(stderr, "%s\n", forest.status().message().c_str());
    std::exit(1);
  }
  s->forest = std::move(forest).value();
  BoosterHandle booster = nullptr;
  DMatrixHandle proxy = nullptr;
  if (XGBoosterCreate(nullptr, 0, &booster) != 0 ||
      XGBoosterLoadModel(booster, path.c_str()) != 0 ||
      XGBoosterSetParam(booster, "nthread", "1") != 0 || XGProxyDMatrixCreate(&proxy) != 0) {
    std::fprintf(stderr, "XGBoost cannot load %s: %s\n", path.c_str(), XGBGetLastError());
    std::exit(1);
  }
  s->booster.reset(booster);
  s->proxy.reset(proxy);
  s->rows = rows_around_thresholds(s->forest, kRows);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::vector<std::unique_ptr<Subject>> subjects;
  for (int i = 1; i < argc; ++i) subjects.push_back(load(argv[i]));
  if (subjects.empty()) {
    std::fprintf(stderr, "usage: tree_benchmark MODEL.json [MODEL.json ...] [--benchmark_*]\n");
    return 2;
  }
  for (const auto& owned : subjects) {
    const Subject* s = owned.get();
    std::size_t trees = s->forest.roots.size();
    std::fprintf(stderr, "%s: %zu trees, %zu features, %zu outputs, layout: %s\n", s->name.c_str(),
                 trees, s->forest.num_features, s->forest.num_groups,
                 std::string(s->forest.layout()).c_str());
    for (std::size_t n : {std::size_t{1}, kRows}) {
      const std::string rows = "/rows:" + std::to_string(n);
      benchmark::RegisterBenchmark(
          ("xgboost/" + s->name + rows).c_str(), [s, n](benchmark::State& state) {
            std::vector<float> out;
            for (auto _ : state) {
              xgboost_predict(*s, n, out);
              benchmark::DoNotOptimize(out.data());
            }
            state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
          });
      benchmark::RegisterBenchmark(
          ("native/" + s->name + rows).c_str(), [s, n](benchmark::State& state) {
            std::vector<double> out(n * s->forest.outputs_per_row());
            for (auto _ : state) {
              s->forest.predict(s->rows.data(), n, out.data());
              benchmark::DoNotOptimize(out.data());
            }
            state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
          });
    }
    // One row through the AVX2 kernel where the AVX-512 one serves by default, what the second
    // kernel gains in the same run; and both on a row without missing values (the first such
    // row), which the AVX-512 kernel compares with fewer steps.
    const std::size_t cols = s->forest.num_features;
    std::size_t complete = 0;
    while (complete + 1 < kRows &&
           std::any_of(s->rows.begin() + static_cast<std::ptrdiff_t>(complete * cols),
                       s->rows.begin() + static_cast<std::ptrdiff_t>((complete + 1) * cols),
                       [](float x) { return x != x; })) {
      ++complete;
    }
    for (const auto& [kernel, avx512] :
         {std::pair{"native", true}, std::pair{"native-avx2", false}}) {
      for (const auto& [label, row] :
           {std::pair{"", std::size_t{0}}, std::pair{"/no-missing", complete}}) {
        if (avx512 && *label == '\0') continue;  // native/rows:1 above
        benchmark::RegisterBenchmark(
            (std::string(kernel) + "/" + s->name + "/rows:1" + label).c_str(),
            [s, row, avx512, cols](benchmark::State& state) {
              std::vector<double> out(s->forest.outputs_per_row());
              forklift::tree::enable_avx512_kernels(avx512);
              for (auto _ : state) {
                s->forest.predict(s->rows.data() + row * cols, 1, out.data());
                benchmark::DoNotOptimize(out.data());
              }
              forklift::tree::enable_avx512_kernels(true);
              state.SetItemsProcessed(state.iterations());
            });
      }
    }
    // Explanations of one row (TreeSHAP): the native engine's against XGBoost's pred_contribs;
    // the ratio to native/rows:1 is their cost in predictions.
    auto explainer = forklift::tree::TreeExplainer::build(s->forest);
    if (explainer.ok()) {
      benchmark::RegisterBenchmark(("explain-native/" + s->name + "/rows:1").c_str(),
                                   [s, e = std::move(explainer).value()](benchmark::State& state) {
                                     std::vector<double> out(e.values_per_row());
                                     for (auto _ : state) {
                                       e.explain(s->rows.data(), out.data());
                                       benchmark::DoNotOptimize(out.data());
                                     }
                                     state.SetItemsProcessed(state.iterations());
                                   });
      benchmark::RegisterBenchmark(
          ("explain-xgboost/" + s->name + "/rows:1").c_str(), [s](benchmark::State& state) {
            const float* result = nullptr;
            std::size_t total = 0;
            for (auto _ : state) {
              const auto status = forklift::xgboost_predict(
                  s->booster.get(), s->proxy.get(), s->rows.data(), 1, s->forest.num_features,
                  forklift::tree::LibraryOutput::kContributions, result, total);
              if (!status.ok()) state.SkipWithError(status.message().c_str());
              benchmark::DoNotOptimize(result);
            }
            state.SetItemsProcessed(state.iterations());
          });
    } else {
      std::fprintf(stderr, "%s: no explanations: %s\n", s->name.c_str(),
                   explainer.status().message().c_str());
    }
    // What the engine check adds to a load (once; not a benchmark).
    const auto start = std::chrono::steady_clock::now();
    const forklift::tree::LibraryPredict library = [s](const float* rows, std::size_t n,
                                                       forklift::tree::LibraryOutput what,
                                                       std::vector<float>& out) {
      const float* result = nullptr;
      std::size_t total = 0;
      forklift::Status status = forklift::xgboost_predict(
          s->booster.get(), s->proxy.get(), rows, n, s->forest.num_features, what, result, total);
      if (status.ok()) out.assign(result, result + total);
      return status;
    };
    auto report = forklift::tree::check_against_library(s->forest, library, {});
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "%s: engine check %s in %.3f s: %s\n", s->name.c_str(),
                 report.ok() ? "passed" : "FAILED", seconds,
                 report.ok() ? report->summary().c_str() : report.status().message().c_str());
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
