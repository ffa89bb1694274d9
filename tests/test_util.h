// Shared helpers for unit tests: temporary model repositories and test runtimes.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "core/guarded_model.h"
#include "core/model_registry.h"
#include "forklift/runtime.h"

namespace forklift::testing {

// One float feature "x" in, one float "y" out.
inline Schema one_float_schema() {
  Schema s;
  s.features.push_back(FeatureSpec{"x", ValueType::kFloat, 1, false});
  s.output = OutputSpec{"y", ValueType::kFloat, 1};
  return s;
}

// A directory under /tmp that is removed with everything in it when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("forklift-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& file, const std::string& text) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file) << text;
}

// A manifest for the `test_sum` runtime (registered in test_runtimes.cc): output = a + b.
inline std::string sum_manifest(const std::string& policy = "latest") {
  return "runtime: test_sum\nartifact: weights.txt\nversion_policy: " + policy +
         "\nfeatures:\n  - {name: a, type: float}\n  - {name: b, type: float}\n"
         "output: {name: total, type: float}\n";
}

// Writes a test_sum version whose artifact holds `offset` (added to every output) and whose
// self-test expects `expected` for a=1, b=2.
inline void write_sum_version(const std::filesystem::path& repo, const std::string& id, int version,
                              double offset, double expected,
                              const std::string& policy = "latest") {
  const auto dir = repo / id / std::to_string(version);
  write_file(dir / "model.yaml", sum_manifest(policy));
  write_file(dir / "weights.txt", std::to_string(offset));
  write_file(dir / "selftest.jsonl", "{\"features\": {\"a\": 1, \"b\": 2}, \"expected\": " +
                                         std::to_string(expected) + "}\n");
}

// `inner` behind the guard every loaded version gets (core/guarded_model.h), still reachable
// through the caller's pointer: what a decorator under test sits on in the server.
inline std::shared_ptr<const Model> guarded_shared(std::shared_ptr<const Model> inner) {
  class Forwarding final : public Model {
   public:
    explicit Forwarding(std::shared_ptr<const Model> m) : m_(std::move(m)) {}
    Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
      return m_->predict(batch, outputs);
    }

   private:
    std::shared_ptr<const Model> m_;
  };
  return guarded(std::make_unique<Forwarding>(std::move(inner)));
}

// What `registry` answers for a test_sum model `model_id` with a=1, b=2 (the newest serving
// version, or `version`); fails the test if it cannot.
inline double predict_sum(const ModelRegistry& registry, std::optional<std::int64_t> version = {},
                          const std::string& model_id = "sum") {
  auto m = registry.snapshot()->resolve(model_id, version);
  EXPECT_TRUE(m.ok()) << m.status().message();
  if (!m.ok()) return 0;
  Batch batch(*(*m)->schema);
  auto row = batch.add_row();
  row[0] = 1.0;
  row[1] = 2.0;
  std::vector<Value> out;
  EXPECT_TRUE((*m)->model->predict(batch, out).ok());
  return out.empty() ? 0 : std::get<double>(out.at(0));
}

}  // namespace forklift::testing
