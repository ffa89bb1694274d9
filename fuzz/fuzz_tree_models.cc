// Model files through the native tree runtime's parsers (XGBoost JSON when the first byte is
// odd, LightGBM text otherwise), and every model they accept evaluated on a few rows, one at a
// time and as a batch, given the engine check's generated rows, and explained (TreeSHAP, from
// the file's node covers) when the explainer takes it.
// Oracle: no crash or sanitizer report (a parser must refuse what it cannot lay out safely).
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "runtimes/tree/engine_check.h"
#include "runtimes/tree/forest.h"
#include "runtimes/tree/tree_shap.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto forest = (data[0] & 1) ? forklift::tree::parse_xgboost_json(text, "fuzz.json")
                              : forklift::tree::parse_lightgbm_text(text, "fuzz.txt");
  if (!forest.ok() || forest->num_features > 100000) return 0;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float values[] = {0.0f, 1.5f, -3.0f, nan, 1e30f, 33.0f};
  std::vector<float> rows;
  for (const float x : values) {
    std::vector<float> row(forest->num_features, x);
    volatile double y = forest->predict(row.data());  // the one-row path
    (void)y;
    rows.insert(rows.end(), row.begin(), row.end());
  }
  // The batch path (blocks of rows, the vector kernel where the CPU has it), every output.
  std::vector<double> out(6 * forest->outputs_per_row());
  forest->predict(rows.data(), 6, out.data());
  // The engine check's rows, against the forest itself (the generator walks every node's path).
  if (forest->nodes.size() < 20000) {
    std::size_t covered = 0;
    const std::vector<float> check = forklift::tree::coverage_rows(*forest, covered);
    (void)check;
  }
  // Explanations, within the budget a request would get.
  auto explainer = forklift::tree::TreeExplainer::build(*forest);
  if (explainer.ok() && explainer->check_budget(1).ok()) {
    std::vector<double> contributions(explainer->values_per_row());
    explainer->explain(rows.data() + 3 * forest->num_features, contributions.data());  // NaNs
    explainer->explain(rows.data(), contributions.data());
  }
  return 0;
}
