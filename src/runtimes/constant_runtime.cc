// The built-in `constant` runtime: answers every row with the number in its artifact. A model
// that costs nothing, for measuring the server's own overhead (bench/run.sh's no-op model) and
// for tests.
#include <fstream>
#include <memory>

#include "runtimes/runtime_registry.h"

namespace forklift {
namespace {

class ConstantModel final : public Model {
 public:
  explicit ConstantModel(double value) : value_(value) {}
  Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
    for (std::size_t r = 0; r < batch.rows(); ++r) outputs.emplace_back(value_);
    return Status::Ok();
  }

 private:
  double value_;
};

Result<std::unique_ptr<Model>> load_constant(const LoadContext& ctx) {
  if (ctx.schema->output.type != ValueType::kFloat) {
    return InvalidArgument("the constant runtime answers a float; output.type must be float");
  }
  std::ifstream in(ctx.artifact);
  double value = 0;
  if (!(in >> value)) return InvalidArgument(ctx.artifact.string() + ": no number in it");
  return std::unique_ptr<Model>(std::make_unique<ConstantModel>(value));
}

}  // namespace

void register_constant_runtime() {
  register_runtime(RuntimeInfo{"constant", "forklift_constant", load_constant});
}

}  // namespace forklift
