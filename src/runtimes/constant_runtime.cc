// The built-in `constant` runtime: answers every row with the number in its artifact. A model
// that costs nothing, for measuring the server's own overhead (bench/run.sh's no-op model) and
// for tests; `runtime_options: {delay_us: N}` makes each call take N microseconds (sleeping), to
// stand in for a slow model in load and overload tests, and `fail_every: N` makes every Nth call
// fail, to stand in for a version that answers errors (rollout guardrail tests).
#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "forklift/runtime.h"

namespace forklift {
namespace {

class ConstantModel final : public Model {
 public:
  ConstantModel(double value, std::chrono::microseconds delay, long long fail_every)
      : value_(value), delay_(delay), fail_every_(fail_every) {}
  Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    if (fail_every_ > 0 && calls_.fetch_add(1, std::memory_order_relaxed) % fail_every_ ==
                               static_cast<unsigned long long>(fail_every_ - 1)) {
      return Internal("failed on purpose (runtime_options.fail_every)");
    }
    for (std::size_t r = 0; r < batch.rows(); ++r) outputs.emplace_back(value_);
    return Status::Ok();
  }

 private:
  double value_;
  std::chrono::microseconds delay_;
  long long fail_every_;
  mutable std::atomic<unsigned long long> calls_{0};
};

Result<std::unique_ptr<Model>> load_constant(const LoadContext& ctx) {
  if (ctx.schema->output.type != ValueType::kFloat) {
    return InvalidArgument("the constant runtime answers a float; output.type must be float");
  }
  std::ifstream in(ctx.artifact);
  double value = 0;
  if (!(in >> value)) return InvalidArgument(ctx.artifact.string() + ": no number in it");
  long long delay = 0;
  const std::string text = ctx.option("delay_us", "0");
  try {
    delay = std::stoll(text);
  } catch (const std::exception&) {
    delay = -1;
  }
  if (delay < 0 || delay > 60'000'000) {
    return InvalidArgument("runtime_options.delay_us must be 0 to 60000000 microseconds, not '" +
                           text + "'");
  }
  long long fail_every = 0;
  const std::string every = ctx.option("fail_every", "0");
  try {
    fail_every = std::stoll(every);
  } catch (const std::exception&) {
    fail_every = -1;
  }
  if (fail_every < 0 || fail_every > 1'000'000'000) {
    return InvalidArgument("runtime_options.fail_every must be 0 (never) to 1000000000, not '" +
                           every.substr(0, 32) + "'");
  }
  return std::unique_ptr<Model>(
      std::make_unique<ConstantModel>(value, std::chrono::microseconds(delay), fail_every));
}

}  // namespace

void register_constant_runtime() {
  register_runtime(RuntimeInfo{"constant", "forklift_constant", load_constant});
}

}  // namespace forklift
