// Shared set-up for the fuzz targets: a model repository with one model of every feature type,
// served by the built-in constant runtime, and a router in front of it.
#pragma once

#include <simdjson.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "api/router.h"
#include "core/model_registry.h"
#include "observability/log.h"
#include "observability/metrics.h"
#include "runtimes/builtin.h"

namespace forklift::fuzz {

inline void write(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// Model `m`: a float that may be missing, an int, a bool, a string and a 3-float vector.
inline constexpr char kManifest[] = R"(runtime: constant
artifact: value.txt
features:
  - {name: f, type: float, allow_missing: true}
  - {name: i, type: int}
  - {name: b, type: bool}
  - {name: s, type: string}
  - {name: v, type: float_vector, length: 3}
output: {name: y, type: float}
quality: {task: regression}
)";

inline std::filesystem::path make_repository() {
  char pattern[] = "/tmp/forklift-fuzz-XXXXXX";
  const char* dir = mkdtemp(pattern);
  if (dir == nullptr) std::abort();
  const std::filesystem::path root(dir);
  write(root / "m" / "1" / "model.yaml", kManifest);
  write(root / "m" / "1" / "value.txt", "42\n");
  write(root / "m" / "1" / "selftest.jsonl",
        R"({"features": {"f": 1, "i": 2, "b": true, "s": "x", "v": [1, 2, 3]}, "expected": 42})"
        "\n");
  return root;
}

// One router over the repository above, made once per fuzzing process.
struct Served {
  Served()
      : root(make_repository()),
        registry(root, metrics),
        feedback(FeedbackOptions{1 << 20}, metrics, nullptr),
        inference(registry, nullptr, nullptr, &feedback),
        router(
            ApiContext{&registry, &inference, &metrics, 0, nullptr, nullptr, nullptr, &feedback}) {
    log::set_min_level(log::Level::kError);
    register_builtin_runtimes();
    if (!registry.sync().ok()) std::abort();
  }
  ~Served() {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  std::filesystem::path root;
  MetricsRegistry metrics;
  ModelRegistry registry;
  FeedbackService feedback;  // predictions of `m` are kept for labels
  InferenceService inference;
  Router router;
};

// The oracle for every answer: a known status, and a JSON body that parses.
inline void check_response(const HttpResponse& res) {
  switch (res.status) {
    case 200:
    case 400:
    case 404:
    case 405:
    case 409:
    case 413:
    case 431:
    case 500:
    case 503:
    case 504:
      break;
    default:
      std::abort();
  }
  if (res.content_type == "application/json") {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(res.body).get(doc)) std::abort();
  }
}

}  // namespace forklift::fuzz
