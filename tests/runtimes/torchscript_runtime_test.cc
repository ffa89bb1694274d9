#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <thread>

#include "core/version_loader.h"
#include "forklift/runtime.h"
#include "runtimes/load_direct.h"
#include "test_util.h"

namespace forklift {
namespace {

using testing::DirectLoad;
using testing::load_direct;
using testing::TempDir;
using testing::write_file;

const std::filesystem::path kFraud = std::filesystem::path(FORKLIFT_EXAMPLE_MODELS) / "fraud";

Batch rows_of(const Schema& schema, std::size_t n) {
  Batch batch(schema);
  for (std::size_t r = 0; r < n; ++r) {
    auto row = batch.add_row();
    row[0] = 20.0 + static_cast<double>(r) * 7.5;  // amount
    row[1] = 60.0;                                 // avg_amount_30d
    row[2] = std::int64_t{30 + static_cast<std::int64_t>(r) * 40};
    row[3] = std::int64_t{static_cast<std::int64_t>(r % 7)};
    row[4] = std::int64_t{4};
    row[5] = std::int64_t{static_cast<std::int64_t>(r % 24)};
    row[6] = r % 5 == 0;
    row[7] = r % 2 == 0;
  }
  return batch;
}

TEST(TorchScriptRuntime, ExampleModelPassesItsSelfTests) {
  LoadOutcome out = load_version(kFraud / "1", "fraud", 1);
  ASSERT_TRUE(out.loaded) << out.status.message();
  EXPECT_EQ(out.selftest->cases, 16u);
  EXPECT_EQ(out.selftest->passed, 16u);
  EXPECT_EQ(out.loaded->platform, "pytorch_torchscript");
}

TEST(TorchScriptRuntime, BatchEqualsRowByRowAcrossThreads) {
  LoadOutcome out = load_version(kFraud / "1", "fraud", 1);
  ASSERT_TRUE(out.loaded) << out.status.message();
  const Model& model = *out.loaded->model;
  const Schema& schema = out.loaded->manifest.schema;
  const Batch batch = rows_of(schema, 64);
  std::vector<Value> expected;
  ASSERT_TRUE(model.predict(batch, expected).ok());
  ASSERT_EQ(expected.size(), 64u);
  for (const Value& v : expected) {
    const double p = std::get<double>(v);
    EXPECT_TRUE(p >= 0 && p <= 1) << p;  // a sigmoid
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (std::size_t r = 0; r < 64; ++r) {
        Batch one(schema);
        auto row = one.add_row();
        for (std::size_t k = 0; k < row.size(); ++k) row[k] = batch.row(r)[k];
        std::vector<Value> single;
        if (!model.predict(one, single).ok() ||
            std::abs(std::get<double>(single[0]) - std::get<double>(expected[r])) > 1e-6) {
          ++mismatches;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

class TorchScriptRejects : public ::testing::Test {
 protected:
  // The fraud module under a manifest changed by `edit`.
  DirectLoad load_with(const std::string& yaml) {
    const auto dir = tmp.path() / "fraud" / "1";
    std::filesystem::create_directories(dir);
    std::filesystem::copy_file(kFraud / "1" / "model.pt", dir / "model.pt",
                               std::filesystem::copy_options::overwrite_existing);
    write_file(dir / "model.yaml", yaml);
    return load_direct(dir, "fraud", 1);
  }
  TempDir tmp;
};

constexpr const char* kFeatures =
    "features:\n  - {name: amount, type: float}\n  - {name: avg_amount_30d, type: float}\n"
    "  - {name: account_age_days, type: int}\n  - {name: txn_count_24h, type: int}\n"
    "  - {name: distinct_merchants_7d, type: int}\n  - {name: hour_of_day, type: int}\n"
    "  - {name: is_international, type: bool}\n  - {name: card_present, type: bool}\n";

TEST_F(TorchScriptRejects, AnOutputShapeTheManifestDoesNotDeclare) {
  DirectLoad out = load_with(std::string("runtime: torchscript\nartifact: model.pt\n") + kFeatures +
                             "output: {name: p, type: float_vector, length: 3}\n");
  ASSERT_FALSE(out.loaded());
  EXPECT_NE(out.status.message().find("needs [rows, 3]"), std::string::npos)
      << out.status.message();
}

TEST_F(TorchScriptRejects, TheWrongNumberOfInputColumns) {
  DirectLoad out = load_with(
      "runtime: torchscript\nartifact: model.pt\nfeatures:\n  - {name: a, type: float}\n"
      "  - {name: b, type: float}\n  - {name: c, type: float}\noutput: {name: p, type: float}\n");
  ASSERT_FALSE(out.loaded());
  EXPECT_NE(out.status.message().find("forward failed"), std::string::npos)
      << out.status.message() << out.status.message();
}

TEST_F(TorchScriptRejects, AFileThatIsNotAModuleAndBadOptions) {
  DirectLoad out = load_with(std::string("runtime: torchscript\nartifact: model.pt\n") + kFeatures +
                             "output: {name: p, type: float}\n");
  ASSERT_TRUE(out.loaded()) << out.status.message();  // the control: this one loads
  write_file(tmp.path() / "fraud" / "1" / "model.pt", "not a zip file");
  out = load_direct(tmp.path() / "fraud" / "1", "fraud", 1);
  ASSERT_FALSE(out.loaded());
  EXPECT_NE(out.status.message().find("not a TorchScript module"), std::string::npos)
      << out.status.message();
  out = load_with(std::string("runtime: torchscript\nartifact: model.pt\n") + kFeatures +
                  "output: {name: p, type: float}\nruntime_options: {intra_op_threads: zero}\n");
  ASSERT_FALSE(out.loaded());
  EXPECT_NE(out.status.message().find("intra_op_threads"), std::string::npos);
  out = load_with(
      "runtime: torchscript\nartifact: model.pt\nfeatures:\n  - {name: city, type: string}\n"
      "output: {name: p, type: float}\n");
  ASSERT_FALSE(out.loaded());
  EXPECT_NE(out.status.message().find("string feature"), std::string::npos);
}

}  // namespace
}  // namespace forklift
