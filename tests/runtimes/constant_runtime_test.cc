#include <gtest/gtest.h>

#include "runtimes/load_direct.h"
#include "test_util.h"

namespace forklift {
namespace {

using testing::load_direct;
using testing::TempDir;
using testing::write_file;

TEST(ConstantRuntime, AnswersItsNumberForEveryRow) {
  TempDir tmp;
  write_file(tmp.path() / "model.yaml",
             "runtime: constant\nartifact: value.txt\nfeatures:\n  - {name: x, type: float}\n"
             "output: {name: y, type: float}\n");
  write_file(tmp.path() / "value.txt", "2.5\n");
  auto m = load_direct(tmp.path());
  ASSERT_TRUE(m.loaded()) << m.status.message();
  Batch batch(m.manifest->schema);
  batch.add_row()[0] = 1.0;
  batch.add_row()[0] = -7.0;
  std::vector<Value> out;
  ASSERT_TRUE(m.model->predict(batch, out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(std::get<double>(out[0]), 2.5);
  EXPECT_EQ(std::get<double>(out[1]), 2.5);
  write_file(tmp.path() / "value.txt", "none");
  auto bad = load_direct(tmp.path());
  ASSERT_FALSE(bad.loaded());
  EXPECT_NE(bad.status.message().find("no number"), std::string::npos);
}

}  // namespace
}  // namespace forklift
