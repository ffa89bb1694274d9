// Small runtimes that the unit tests load through the real registration path.
#include <fstream>
#include <stdexcept>

#include "forklift/runtime.h"
#include "runtimes/builtin.h"

namespace {

struct Offset {
  double value = 0;
};

forklift::Result<Offset> load_sum(const forklift::LoadContext& ctx) {
  std::ifstream in(ctx.artifact);
  Offset o;
  if (!(in >> o.value)) return forklift::InvalidArgument("weights.txt must hold a number");
  return o;
}

// a + b + offset; throws for a negative `a`, to test how exceptions are contained.
forklift::Value predict_sum(const Offset& o, const forklift::RowView& row) {
  if (row.number("a") < 0) throw std::runtime_error("negative a is not supported");
  return row.number("a") + row.number("b") + o.value;
}

}  // namespace

FORKLIFT_REGISTER_RUNTIME("test_sum", load_sum, predict_sum);

namespace forklift {
namespace {
// Every test process (ctest runs each test alone) knows the built-in runtimes too.
[[maybe_unused]] const bool builtin_registered = (register_builtin_runtimes(), true);
}  // namespace
}  // namespace forklift
