// The `online` runtime: it learns a linear function and a logistic one from labels, a snapshot
// loads back to the same model, `learn: false` freezes it, hostile artifacts are refused, and
// predict and learn may run at once (the TSan build checks).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <thread>

#include "runtimes/load_direct.h"
#include "test_util.h"

namespace forklift {
namespace {

using testing::load_direct;
using testing::TempDir;
using testing::write_file;

constexpr const char* kOnlineManifest =
    "runtime: online\nartifact: state.json\nfeatures:\n  - {name: x1, type: float}\n"
    "  - {name: x2, type: float, allow_missing: true}\noutput: {name: y, type: float}\n";

struct Rows {
  Batch batch;
  std::vector<double> labels;
};

// n rows of x1, x2 in [0, 10) and label f(x1, x2).
template <class F>
Rows rows(const Schema& schema, std::size_t n, std::uint32_t seed, F f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 10);
  Rows out{Batch(schema), {}};
  for (std::size_t i = 0; i < n; ++i) {
    const double x1 = u(rng), x2 = u(rng);
    auto row = out.batch.add_row();
    row[0] = x1;
    row[1] = x2;
    out.labels.push_back(f(x1, x2, rng));
  }
  return out;
}

std::vector<double> predict(const Model& model, const Batch& batch) {
  std::vector<Value> out;
  EXPECT_TRUE(model.predict(batch, out).ok());
  std::vector<double> numbers;
  for (const Value& v : out) numbers.push_back(std::get<double>(v));
  return numbers;
}

// Teaches `model` the rows one at a time, as labels arriving one by one would.
void teach(const Model& model, const Rows& data) {
  for (std::size_t r = 0; r < data.batch.rows(); ++r) {
    Batch one(data.batch.schema());
    auto row = one.add_row();
    for (std::size_t i = 0; i < row.size(); ++i) row[i] = data.batch.row(r)[i];
    ASSERT_TRUE(model.learn(one, {data.labels[r]}).ok());
  }
}

double mae(const std::vector<double>& p, const std::vector<double>& y) {
  double sum = 0;
  for (std::size_t i = 0; i < p.size(); ++i) sum += std::fabs(p[i] - y[i]);
  return sum / static_cast<double>(p.size());
}

class OnlineRuntime : public ::testing::Test {
 protected:
  testing::DirectLoad load(const std::string& state, const std::string& options = "") {
    write_file(tmp_.path() / "model.yaml", kOnlineManifest + options);
    write_file(tmp_.path() / "state.json", state);
    return load_direct(tmp_.path());
  }
  TempDir tmp_;
};

TEST_F(OnlineRuntime, LearnsALinearFunctionFromLabels) {
  auto m = load("{\"format\": 1, \"algorithm\": \"ftrl_linear\"}");
  ASSERT_TRUE(m.loaded()) << m.status.message();
  EXPECT_TRUE(m.model->learns());
  const auto line = [](double x1, double x2, std::mt19937& rng) {
    return 300 + 40 * x1 - 25 * x2 + std::normal_distribution<double>(0, 5)(rng);
  };
  const Rows test = rows(m.manifest->schema, 500, 99, line);
  const double untrained = mae(predict(*m.model, test.batch), test.labels);
  teach(*m.model, rows(m.manifest->schema, 5000, 1, line));
  const double trained = mae(predict(*m.model, test.batch), test.labels);
  EXPECT_GT(untrained, 200);
  EXPECT_LT(trained, 15) << "untrained " << untrained;
  EXPECT_EQ(m.model->updates(), 5000u);
}

TEST_F(OnlineRuntime, LearnsALogisticModelOfBinaryLabels) {
  auto m = load("{\"format\": 1, \"algorithm\": \"ftrl_logistic\", \"alpha\": 0.5}");
  ASSERT_TRUE(m.loaded()) << m.status.message();
  const auto coin = [](double x1, double x2, std::mt19937& rng) {
    const double p = 1 / (1 + std::exp(-(0.8 * x1 - 0.6 * x2)));
    return std::uniform_real_distribution<double>(0, 1)(rng) < p ? 1.0 : 0.0;
  };
  teach(*m.model, rows(m.manifest->schema, 5000, 2, coin));
  const Rows test = rows(m.manifest->schema, 1000, 98, coin);
  const std::vector<double> p = predict(*m.model, test.batch);
  std::size_t right = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    EXPECT_GE(p[i], 0);
    EXPECT_LE(p[i], 1);
    right += (p[i] >= 0.5) == (test.labels[i] == 1) ? 1 : 0;
  }
  EXPECT_GT(static_cast<double>(right) / 1000, 0.8);
  // Labels a classifier cannot learn from are skipped, not learned.
  Batch one(m.manifest->schema);
  one.add_row()[0] = 1.0;
  one.mutable_row(0)[1] = 1.0;
  EXPECT_TRUE(m.model->learn(one, {0.5}).ok());
  EXPECT_TRUE(m.model->learn(one, {std::nan("")}).ok());
  EXPECT_EQ(m.model->updates(), 5000u);
  EXPECT_FALSE(m.model->learn(one, {1.0, 0.0}).ok());  // one label per row
}

TEST_F(OnlineRuntime, ASnapshotLoadsBackAsTheSameModelAndFreezing) {
  auto m = load("{\"format\": 1, \"algorithm\": \"ftrl_linear\"}");
  ASSERT_TRUE(m.loaded());
  teach(*m.model, rows(m.manifest->schema, 2000, 3,
                       [](double x1, double x2, std::mt19937&) { return 2 * x1 + x2; }));
  auto text = m.model->snapshot();
  ASSERT_TRUE(text.ok()) << text.status().message();
  auto back = load(*text, "runtime_options: {learn: false}\n");
  ASSERT_TRUE(back.loaded()) << back.status.message();
  const Rows test =
      rows(m.manifest->schema, 200, 4, [](double, double, std::mt19937&) { return 0.0; });
  const std::vector<double> a = predict(*m.model, test.batch), b = predict(*back.model, test.batch);
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-9 * (1 + std::fabs(a[i])));
  // learn: false serves the state and refuses to change it.
  EXPECT_FALSE(back.model->learns());
  EXPECT_FALSE(back.model->learn(test.batch, test.labels).ok());
  EXPECT_EQ(predict(*back.model, test.batch), b);
}

TEST_F(OnlineRuntime, HostileArtifactsAreRefusedWithTheReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not a JSON object"},
      {"[1, 2]", "not a JSON object"},
      {"{\"format\": 2, \"algorithm\": \"ftrl_linear\"}", "'format'"},
      {"{\"format\": 1, \"algorithm\": \"sgd\"}", "'algorithm'"},
      {"{\"format\": 1, \"algorithm\": \"ftrl_linear\", \"z\": [1]}", "'z'"},
      {"{\"format\": 1, \"algorithm\": \"ftrl_linear\", \"n\": [1, -1, 0]}", "'n'"},
      {"{\"format\": 1, \"algorithm\": \"ftrl_linear\", \"z\": [1, \"x\", 0]}", "'z'"},
      {"{\"format\": 1, \"algorithm\": \"ftrl_linear\", \"alpha\": 0}", "'alpha'"},
      {"{\"format\": 1, \"algorithm\": \"ftrl_linear\", \"forget\": 0.9}", "'forget'"},
      {"{\"format\": 1, \"algorithm\": \"ftrl_linear\", \"columns\": 7}", "'columns'"},
      {"{\"format\": 1, \"algorithm\": \"ftrl_linear\", \"count\": -1}", "'count'"},
      // beta 0 made the first update divide 0 by 0 (found by a review): every answer NaN.
      {"{\"format\": 1, \"algorithm\": \"ftrl_linear\", \"beta\": 0}", "'beta'"},
  };
  for (const auto& [state, why] : cases) {
    auto m = load(state);
    ASSERT_FALSE(m.loaded()) << state;
    EXPECT_NE(m.status.message().find(why), std::string::npos)
        << state << ": " << m.status.message();
    EXPECT_EQ(m.status.message().find("\"x\""), std::string::npos);
  }
  // A state file of gigabytes is refused by its size, before it is read.
  write_file(tmp_.path() / "model.yaml", kOnlineManifest);
  std::filesystem::resize_file(tmp_.path() / "state.json", std::uintmax_t{1} << 30);
  auto huge = load_direct(tmp_.path());
  ASSERT_FALSE(huge.loaded());
  EXPECT_NE(huge.status.message().find("larger than 256 MiB"), std::string::npos);
  write_file(tmp_.path() / "model.yaml",
             "runtime: online\nartifact: state.json\nfeatures:\n  - {name: s, type: string}\n"
             "output: {name: y, type: float}\n");
  write_file(tmp_.path() / "state.json", "{\"format\": 1, \"algorithm\": \"ftrl_linear\"}");
  EXPECT_FALSE(load_direct(tmp_.path()).loaded());
}

TEST_F(OnlineRuntime, PredictionsAndLabelsMayArriveAtOnce) {
  auto m = load("{\"format\": 1, \"algorithm\": \"ftrl_linear\"}");
  ASSERT_TRUE(m.loaded());
  const Rows data =
      rows(m.manifest->schema, 2000, 5, [](double x1, double, std::mt19937&) { return x1; });
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        const std::vector<double> p = predict(*m.model, data.batch);
        ASSERT_EQ(p.size(), data.batch.rows());
        for (double v : p) ASSERT_TRUE(std::isfinite(v));
      }
    });
  }
  teach(*m.model, data);
  for (auto& t : readers) t.join();
  EXPECT_EQ(m.model->updates(), 2000u);
}

}  // namespace
}  // namespace forklift
