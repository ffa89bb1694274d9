// Model files through the native tree runtime's parsers (XGBoost JSON when the first byte is
// odd, LightGBM text otherwise), and every model they accept evaluated on a few rows.
// Oracle: no crash or sanitizer report (a parser must refuse what it cannot lay out safely).
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "runtimes/tree/forest.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto forest = (data[0] & 1) ? forklift::tree::parse_xgboost_json(text, "fuzz.json")
                              : forklift::tree::parse_lightgbm_text(text, "fuzz.txt");
  if (!forest.ok() || forest->num_features > 100000) return 0;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const float x : {0.0f, 1.5f, -3.0f, nan, 1e30f, 33.0f}) {
    std::vector<float> row(forest->num_features, x);
    volatile double y = forest->predict(row.data());
    (void)y;
  }
  return 0;
}
