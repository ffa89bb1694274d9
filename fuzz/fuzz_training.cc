// What a training job and the online runtime read from files a team (or an attacker with write
// access to the repository) controls: train.yaml, training rows (JSON lines and CSV cells), and
// an online model's state file. The first byte picks the parser. Oracle: no crash or sanitizer
// report; a spec that parses has values within its documented bounds; rows that are accepted
// hash and come back as rows of the schema; an online state that loads predicts finite numbers
// and snapshots to a state that loads again.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/runtime_table.h"
#include "runtimes/builtin.h"
#include "training/dataset.h"
#include "training/train_spec.h"

namespace {

using namespace forklift;

std::shared_ptr<const Schema> schema() {
  static const auto s = [] {
    Schema out;
    out.features = {{"a", ValueType::kFloat, 1, true},
                    {"b", ValueType::kInt},
                    {"c", ValueType::kBool},
                    {"d", ValueType::kString},
                    {"v", ValueType::kFloatVector, 2}};
    out.output = {"y", ValueType::kFloat};
    return std::make_shared<const Schema>(out);
  }();
  return s;
}

void spec(const std::string& text) {
  auto parsed = training::parse_train_spec(text, "train.yaml");
  if (!parsed.ok()) return;
  const auto& s = *parsed;
  if (s.split.holdout < 0.01 || s.split.holdout > 0.9 || s.rounds < 1 || s.data.max_rows < 1 ||
      (s.data.source == training::DataSource::kFiles && s.data.files.empty())) {
    std::abort();
  }
  for (const auto& f : s.data.files) {
    if (f.empty() || f.front() == '/' || f.find("..") != std::string::npos) {
      // ".." is refused as a path part; a name like "a..b" is fine.
      for (const auto& part : std::filesystem::path(f)) {
        if (part == ".." || std::filesystem::path(f).is_absolute()) std::abort();
      }
    }
  }
}

void rows(const std::string& text) {
  training::RowReader reader(schema(), "y", {});
  std::size_t start = 0, n = 0;
  while (start <= text.size() && n < 64) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    if (n % 2 == 0) {
      reader.add_json(line, "row");
    } else {
      // The same line as CSV cells under a fixed header.
      std::vector<std::string> cells;
      std::size_t s = 0;
      for (std::size_t comma; (comma = line.find(',', s)) != std::string::npos; s = comma + 1) {
        cells.push_back(line.substr(s, comma - s));
      }
      cells.push_back(line.substr(s));
      static const std::vector<std::string_view> names = {"a", "b", "c", "d", "v", "y"};
      std::vector<std::string_view> views(cells.begin(), cells.end());
      reader.add_cells(names, views, "row");
    }
    start = end + 1;
    ++n;
  }
  auto data = reader.finish("fuzz");
  if (!data.ok()) return;
  if (data->sha256().size() != 64) std::abort();
  std::vector<std::size_t> all(data->rows());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  const Batch batch = data->batch(all);
  if (batch.rows() != data->rows()) std::abort();
  for (double label : data->labels()) {
    if (!std::isfinite(label)) std::abort();
  }
}

void online_state(const std::string& text) {
  register_builtin_runtimes();
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("fuzz-online-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  const auto file = dir / "state.json";
  std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
  Schema s;
  s.features = {{"x1", ValueType::kFloat, 1, true}, {"x2", ValueType::kFloat}};
  s.output = {"y", ValueType::kFloat};
  const RuntimeInfo* online = find_runtime("online");
  LoadContext ctx{"m", 1, dir, file, &s, {}};
  auto model = online->loader(ctx);
  if (!model.ok()) return;
  Batch batch(s);
  auto row = batch.add_row();
  row[0] = 1.5;
  row[1] = -2.0;
  std::vector<Value> out;
  if (!(*model)->predict(batch, out).ok() || out.size() != 1) std::abort();
  (void)(*model)->learn(batch, {3.0});
  auto snap = (*model)->snapshot();
  if (!snap.ok()) std::abort();
  std::ofstream(file, std::ios::binary | std::ios::trunc) << *snap;
  if (!online->loader(ctx).ok()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      spec(text);
      break;
    case 1:
      rows(text);
      break;
    default:
      online_state(text);
      break;
  }
  return 0;
}
