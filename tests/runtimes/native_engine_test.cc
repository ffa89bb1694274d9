// The native tree engine as the xgboost runtime's default: several outputs, every evaluation path
// giving the same bits, and the load-time check against the library catching a wrong engine.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <random>

#include "runtimes/load_direct.h"
#include "runtimes/tree/complete_rows_simd.h"
#include "runtimes/tree/engine_check.h"
#include "runtimes/tree/forest.h"
#include "test_util.h"

namespace forklift {
namespace {

using testing::load_direct;
using testing::TempDir;
using testing::write_file;

const std::filesystem::path kTestModels(FORKLIFT_TEST_MODELS);
const std::filesystem::path kEtaVersion2 =
    std::filesystem::path(FORKLIFT_EXAMPLE_MODELS) / "eta" / "2";

tree::Forest load(const std::filesystem::path& file) {
  auto forest = tree::load_forest(file);
  EXPECT_TRUE(forest.ok()) << forest.status().message();
  return forest.ok() ? std::move(forest).value() : tree::Forest{};
}

// Random rows of `cols` features, a tenth of the values missing, some on round numbers.
std::vector<float> random_engine_rows(std::size_t rows, std::size_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(-3, 40);
  std::uniform_real_distribution<float> coin(0, 1);
  std::vector<float> out(rows * cols);
  for (float& v : out) {
    const float c = coin(rng);
    v = c < 0.1f ? NAN : c < 0.2f ? std::round(value(rng)) : value(rng);
  }
  return out;
}

// XGBoost's own predictions for models with several outputs (scripts/make_tree_test_models.py).
TEST(NativeEngine, EqualsXGBoostWithSeveralOutputs) {
  for (const std::string name : {"multiclass_softprob", "multiclass_softmax", "multitarget"}) {
    const tree::Forest forest = load(kTestModels / ("xgb_" + name + ".json"));
    simdjson::dom::parser parser;
    simdjson::dom::element cases;
    ASSERT_FALSE(parser.load((kTestModels / ("xgb_" + name + ".cases.json")).string()).get(cases));
    simdjson::dom::array rows = cases["rows"], predictions = cases["predictions"];
    ASSERT_GE(rows.size(), 1000u);
    std::vector<float> matrix;
    for (simdjson::dom::array row : rows) {
      for (auto v : row) matrix.push_back(v.is_null() ? NAN : static_cast<float>(double(v)));
    }
    const std::size_t n = rows.size(), per_row = forest.outputs_per_row();
    EXPECT_EQ(per_row, name == "multiclass_softmax" ? 1u : name == "multitarget" ? 2u : 3u);
    std::vector<double> got(n * per_row);
    forest.predict(matrix.data(), n, got.data());
    int mismatches = 0;
    std::size_t r = 0;
    for (auto want : predictions) {
      std::vector<double> expected;
      if (want.is_array()) {
        for (auto v : want.get_array()) expected.push_back(double(v));
      } else {
        expected.push_back(double(want));
      }
      ASSERT_EQ(expected.size(), per_row) << name;
      for (std::size_t o = 0; o < per_row; ++o) {
        const double a = got[r * per_row + o], b = expected[o];
        if (std::abs(a - b) > 1e-5 * std::max(1.0, std::abs(b)) && ++mismatches < 5) {
          ADD_FAILURE() << name << " row " << r << " output " << o << ": " << a << " vs " << b;
        }
      }
      ++r;
    }
    EXPECT_EQ(mismatches, 0) << name;
  }
}

// The one-row path (trees interleaved), the batch path (blocks of rows through each tree) and
// the node walk (models the complete layout does not suit) add the same leaves in the same
// order: the same bits, for one output and for several.
// A random XGBoost JSON model: `trees` complete trees of `depth` over `features` features, with
// missing values going either way (as wide as the one-row kernel's register paths: 8, 16, 32,
// 64 features, and wider).
std::string random_model(std::size_t features, std::size_t trees, int depth, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(-3, 40);
  std::string json =
      R"({"learner": {"learner_model_param": {"base_score": "5E-1", "num_feature": ")" +
      std::to_string(features) +
      R"(", "num_class": "0", "num_target": "1"}, "objective": {"name": "reg:squarederror"},
      "gradient_booster": {"name": "gbtree", "model": {"trees": [)";
  const int inner = (1 << depth) - 1, all = (1 << (depth + 1)) - 1;
  for (std::size_t t = 0; t < trees; ++t) {
    std::string left, right, index, cond, dflt;
    for (int i = 0; i < all; ++i) {
      const bool leaf = i >= inner;
      const std::string sep = i ? "," : "";
      left += sep + std::to_string(leaf ? -1 : 2 * i + 1);
      right += sep + std::to_string(leaf ? -1 : 2 * i + 2);
      index += sep + std::to_string(leaf ? 0 : rng() % features);
      cond += sep + std::to_string(value(rng));
      dflt += sep + std::to_string(rng() % 2);
    }
    json += std::string(t ? "," : "") + R"({"left_children": [)" + left +
            R"(], "right_children": [)" + right + R"(], "split_indices": [)" + index +
            R"(], "split_conditions": [)" + cond + R"(], "default_left": [)" + dflt + "]}";
  }
  return json + "]}}}}";
}

TEST(NativeEngine, EveryPathGivesTheSameBits) {
  TempDir tmp;
  std::vector<std::filesystem::path> files = {
      kEtaVersion2 / "model.json", kTestModels / "xgb_multiclass_softprob.json",
      kTestModels / "xgb_multitarget.json", kTestModels / "xgb_categorical_reg.json"};
  // Depths on both sides of the AVX-512 one-row kernel's limit (kMaxAvx512OneRowDepth), feature
  // counts on both sides of each of its register paths (16, 32, 64).
  for (const auto& [features, depth] : std::vector<std::pair<std::size_t, int>>{{7, 5},
                                                                                {20, 5},
                                                                                {40, 5},
                                                                                {70, 5},
                                                                                {16, 6},
                                                                                {33, 6},
                                                                                {64, 6},
                                                                                {9, 3},
                                                                                {12, 7},
                                                                                {5, 1},
                                                                                {6, 2}}) {
    files.push_back(tmp.path() / ("random" + std::to_string(features) + "-depth" +
                                  std::to_string(depth) + ".json"));
    write_file(files.back(), random_model(features, 70, depth, static_cast<unsigned>(features)));
  }
  for (const auto& file : files) {
    const tree::Forest forest = load(file);
    const bool categorical = file.string().find("categorical") != std::string::npos;
    ASSERT_EQ(forest.layout(), categorical ? "node walk" : "complete trees") << file;
    const std::size_t cols = forest.num_features, per_row = forest.outputs_per_row();
    std::vector<std::vector<float>> thresholds(cols);
    for (const tree::Node& node : forest.nodes) {
      if (node.feature >= 0 && node.kind == tree::NodeKind::kNumeric) {
        thresholds[static_cast<std::size_t>(node.feature)].push_back(node.value);
      }
    }
    for (std::size_t n : {1u, 3u, 4u, 17u, 70u, 1000u}) {
      std::vector<float> rows = random_engine_rows(n, cols, static_cast<unsigned>(n));
      // Every other row without missing values: the kernels take another way for those. And
      // every third value exactly a threshold of its feature, or a signed zero or infinity:
      // the ties and edges a comparison can get wrong.
      std::mt19937 pick(static_cast<unsigned>(n));
      for (std::size_t r = 0; r < n; ++r) {
        for (std::size_t c = 0; c < cols; ++c) {
          float& x = rows[r * cols + c];
          if (r % 2 == 1 && std::isnan(x)) x = 1.5f;
          if ((r + c) % 3 != 0) continue;
          const auto& at = thresholds[c];
          switch (pick() % 4) {
            case 0:
              x = -0.0f;
              break;
            case 1:
              x = (pick() % 2 ? 1 : -1) * std::numeric_limits<float>::infinity();
              break;
            default:
              if (!at.empty()) x = at[pick() % at.size()];
          }
        }
      }
      // Without the vector kernels, with AVX2's and with AVX-512's (where the CPU has them): the
      // one-row path, the batch path and the node walk, each against the scalar batch path.
      tree::enable_vector_kernels(false);
      std::vector<double> reference(n * per_row);
      forest.predict(rows.data(), n, reference.data());
      for (int vectors : {0, 1, 2}) {
        tree::enable_vector_kernels(vectors > 0);
        tree::enable_avx512_kernels(vectors > 1);
        std::vector<double> batch(n * per_row), single(per_row);
        forest.predict(rows.data(), n, batch.data());
        ASSERT_EQ(std::memcmp(reference.data(), batch.data(), batch.size() * sizeof(double)), 0)
            << file << " n " << n << " vectors " << vectors;
        for (std::size_t r = 0; r < n; ++r) {
          forest.predict(rows.data() + r * cols, 1, single.data());
          ASSERT_EQ(
              std::memcmp(single.data(), reference.data() + r * per_row, per_row * sizeof(double)),
              0)
              << file << " row " << r << " of " << n << " vectors " << vectors;
        }
      }
    }
  }
  tree::enable_vector_kernels(true);
  tree::enable_avx512_kernels(true);
}

// The AVX-512 one-row kernel is chosen exactly where the CPU has it and the job suits it (so
// that EveryPathGivesTheSameBits compares it here, and says so where it cannot).
TEST(NativeEngine, TheAvx512KernelTakesOneShallowRowWhereTheCpuHasIt) {
  __builtin_cpu_init();
  const bool cpu = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") &&
                   __builtin_cpu_supports("avx512bw");
  const std::uint64_t bits[1] = {};
  tree::CompleteRowsJob job{};
  job.n = 1;
  job.depth = 6;
  job.cols = 16;
  job.stride = 72;
  job.missing_left_bits = bits;
  EXPECT_EQ(tree::use_avx512_one_row(job), cpu);
  if (!cpu) std::cout << "[ NOTE ] this CPU has no AVX-512: its kernel was not compared\n";
  tree::enable_avx512_kernels(false);
  EXPECT_FALSE(tree::use_avx512_one_row(job));
  tree::enable_avx512_kernels(true);
  for (auto change : std::vector<std::function<void(tree::CompleteRowsJob&)>>{
           [](auto& j) { j.depth = 7; }, [](auto& j) { j.cols = 65; }, [](auto& j) { j.n = 2; },
           [](auto& j) { j.missing_left_bits = nullptr; }, [](auto& j) { j.stride = 48; }}) {
    tree::CompleteRowsJob other = job;
    change(other);
    EXPECT_FALSE(tree::use_avx512_one_row(other));
  }
}

TEST(NativeEngine, UsesTheCompleteLayoutWhereItFits) {
  EXPECT_EQ(load(kEtaVersion2 / "model.json").layout(), "complete trees");
  EXPECT_EQ(load(kTestModels / "xgb_categorical_reg.json").layout(), "node walk");  // categorical
}

// Whether a row with node's feature missing can reach it: every ancestor splitting on that
// feature must send missing values the way the path goes.
bool missing_reaches(const tree::Forest& f, std::size_t node) {
  std::vector<std::int64_t> parent(f.nodes.size(), -1);
  for (std::size_t i = 0; i < f.nodes.size(); ++i) {
    if (f.nodes[i].feature < 0) continue;
    parent[static_cast<std::size_t>(f.nodes[i].left)] = static_cast<std::int64_t>(i);
    parent[static_cast<std::size_t>(f.nodes[i].left) + 1] = static_cast<std::int64_t>(i);
  }
  for (std::int64_t child = static_cast<std::int64_t>(node), up = parent[node]; up >= 0;
       child = up, up = parent[static_cast<std::size_t>(up)]) {
    const tree::Node& a = f.nodes[static_cast<std::size_t>(up)];
    if (a.feature != f.nodes[node].feature) continue;
    const bool went_left = child == a.left;
    if (went_left != (a.default_left != 0)) return false;
  }
  return true;
}

// The check's rows must take every split both ways: a threshold moved by one float, or a
// default direction flipped, anywhere in the model, is caught. The "library" here is the
// unchanged forest.
TEST(NativeEngine, TheCheckCatchesOneThresholdOffByOneFloatOrOneDefaultDirection) {
  // 40 trees of depth 4 with two outputs: few enough nodes that each gets its own rows.
  const tree::Forest truth = load(kTestModels / "xgb_multitarget.json");
  const tree::LibraryPredict library = [&truth](const float* rows, std::size_t n,
                                                tree::LibraryOutput what, std::vector<float>& out) {
    const std::size_t cols = truth.num_features;
    out.clear();
    if (what == tree::LibraryOutput::kLeaves) {
      std::vector<std::int32_t> ids(truth.roots.size());
      std::vector<double> magnitudes(truth.num_groups);
      for (std::size_t r = 0; r < n; ++r) {
        truth.leaves_reached(rows + r * cols, ids.data(), magnitudes.data());
        out.insert(out.end(), ids.begin(), ids.end());
      }
      return Status::Ok();
    }
    const bool margins = what == tree::LibraryOutput::kMargins;
    const std::size_t per_row = margins ? truth.num_groups : truth.outputs_per_row();
    std::vector<double> values(n * per_row);
    if (margins) {
      for (std::size_t r = 0; r < n; ++r)
        truth.margins(rows + r * cols, values.data() + r * per_row);
    } else {
      truth.predict(rows, n, values.data());
    }
    out.assign(values.begin(), values.end());
    return Status::Ok();
  };
  auto same = tree::check_against_library(truth, library, {});
  ASSERT_TRUE(same.ok()) << same.status().message();
  EXPECT_EQ(same->nodes_covered, same->nodes);
  EXPECT_GT(same->rows, 3 * same->nodes / 2);
  EXPECT_LT(same->largest_margin_gap, 1e-5);  // the "library" answers in float32

  std::vector<std::size_t> internal;
  for (std::size_t i = 0; i < truth.nodes.size(); ++i) {
    if (truth.nodes[i].feature >= 0) internal.push_back(i);
  }
  std::mt19937 rng(3);
  int caught = 0, tried = 0;
  for (int k = 0; k < 24; ++k) {
    const std::size_t node = internal[rng() % internal.size()];
    tree::Forest wrong = truth;
    if (k % 2 == 0) {
      wrong.nodes[node].value = std::nextafter(wrong.nodes[node].value, INFINITY);
    } else {
      wrong.nodes[node].default_left ^= 1;
    }
    wrong.prepare();
    // A change that cannot alter a prediction is not a defect: both sides end in equal leaves,
    // or (a default direction) no missing value can reach the node, because an ancestor on the
    // same feature sends missing values the other way.
    const auto& l = truth.nodes[static_cast<std::size_t>(truth.nodes[node].left)];
    const auto& r = truth.nodes[static_cast<std::size_t>(truth.nodes[node].left) + 1];
    if (l.feature < 0 && r.feature < 0 && l.value == r.value) continue;
    if (k % 2 == 1 && !missing_reaches(truth, node)) continue;
    ++tried;
    auto report = tree::check_against_library(wrong, library, {});
    if (!report.ok()) {
      ++caught;
      EXPECT_NE(report.status().message().find("against the library's"), std::string::npos);
    } else {
      ADD_FAILURE() << "node " << node << (k % 2 == 0 ? " threshold" : " default direction")
                    << " changed and not caught";
    }
  }
  EXPECT_GE(tried, 16);
  EXPECT_EQ(caught, tried);
}

// eta as `runtime: xgboost` with the given `engine:` line (none: the default).
std::filesystem::path eta_with_engine(const TempDir& tmp, const std::string& engine_line,
                                      const std::string& artifact = "") {
  const auto dir =
      tmp.path() / ("eta" + std::to_string(std::hash<std::string>{}(engine_line + artifact)));
  std::filesystem::create_directories(dir);
  std::ifstream in(kEtaVersion2 / "model.yaml");
  std::string yaml((std::istreambuf_iterator<char>(in)), {});
  if (artifact.empty()) {
    std::filesystem::copy_file(kEtaVersion2 / "model.json", dir / "model.json");
  } else {
    std::filesystem::copy_file(artifact, dir / "model.json");
  }
  write_file(dir / "model.yaml", yaml + engine_line);
  return dir;
}

TEST(NativeEngine, TheXGBoostRuntimeServesNativeByDefaultAndSaysWhy) {
  TempDir tmp;
  auto by_default = load_direct(eta_with_engine(tmp, ""));
  ASSERT_TRUE(by_default.loaded()) << by_default.status.message();
  EXPECT_EQ(by_default.model->engine().name, "native");
  EXPECT_NE(by_default.model->engine().note.find("checked against XGBoost on"), std::string::npos)
      << by_default.model->engine().note;

  auto library = load_direct(eta_with_engine(tmp, "engine: library\n"));
  ASSERT_TRUE(library.loaded()) << library.status.message();
  EXPECT_EQ(library.model->engine().name, "library");

  auto native = load_direct(eta_with_engine(tmp, "engine: native\n"));
  ASSERT_TRUE(native.loaded()) << native.status.message();
  EXPECT_EQ(native.model->engine().name, "native");

  // Both engines answer alike.
  const Schema& schema = by_default.manifest->schema;
  Batch batch(schema);
  const std::vector<float> rows = random_engine_rows(300, schema.features.size(), 9);
  for (std::size_t r = 0; r < 300; ++r) {
    auto row = batch.add_row();
    for (std::size_t c = 0; c < row.size(); ++c)
      row[c] = static_cast<double>(rows[r * row.size() + c]);
  }
  std::vector<Value> a, b;
  ASSERT_TRUE(by_default.model->predict(batch, a).ok());
  ASSERT_TRUE(library.model->predict(batch, b).ok());
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double x = std::get<double>(a[i]), y = std::get<double>(b[i]);
    EXPECT_NEAR(x, y, 1e-5 * std::max(1.0, std::abs(y))) << i;
  }
}

TEST(NativeEngine, AModelTheEngineCannotReadFallsBackUnlessNativeIsRequired) {
  TempDir tmp;
  const auto small_yaml = [](const std::string& engine) {
    std::string y = "runtime: xgboost\nartifact: model.ubj\nfeatures:\n";
    for (int i = 0; i < 6; ++i) y += "  - {name: f" + std::to_string(i) + ", type: float}\n";
    return y + "output: {name: y, type: float}\n" + engine;
  };
  for (const std::string engine : {"", "engine: native\n"}) {
    const auto dir = tmp.path() / (engine.empty() ? "auto" : "native");
    std::filesystem::create_directories(dir);
    std::filesystem::copy_file(kTestModels / "xgb_small_reg.ubj", dir / "model.ubj");
    write_file(dir / "model.yaml", small_yaml(engine));
    auto loaded = load_direct(dir);
    if (engine.empty()) {
      ASSERT_TRUE(loaded.loaded()) << loaded.status.message();
      EXPECT_EQ(loaded.model->engine().name, "library");
      EXPECT_NE(loaded.model->engine().note.find("JSON format only"), std::string::npos)
          << loaded.model->engine().note;
    } else {
      ASSERT_FALSE(loaded.loaded());
      EXPECT_NE(loaded.status.message().find("engine: native"), std::string::npos)
          << loaded.status.message();
    }
  }
}

TEST(NativeEngine, EngineIsRefusedForBuiltInRuntimesWithOneEngine) {
  TempDir tmp;
  const auto dir = tmp.path() / "tree";
  std::filesystem::create_directories(dir);
  write_file(dir / "model.yaml",
             "runtime: tree\nartifact: m.json\nfeatures:\n  - {name: a, type: float}\n"
             "output: {name: y, type: float}\nengine: library\n");
  auto m = parse_manifest(dir / "model.yaml");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("the tree runtime has one engine"), std::string::npos)
      << m.status().message();
  write_file(dir / "model.yaml",
             "runtime: xgboost\nartifact: m.json\nfeatures:\n  - {name: a, type: float}\n"
             "output: {name: y, type: float}\nengine: fastest\n");
  m = parse_manifest(dir / "model.yaml");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("auto, native or library"), std::string::npos);
}

}  // namespace
}  // namespace forklift
