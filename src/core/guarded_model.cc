#include "core/guarded_model.h"

#include <exception>
#include <string>

namespace forklift {
namespace {

class GuardedModel final : public Model {
 public:
  explicit GuardedModel(std::unique_ptr<Model> inner) : inner_(std::move(inner)) {}

  Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
    const std::size_t before = outputs.size();
    Status status = call(batch, outputs);
    // (A runtime that erased what it was handed is wrong too: it shows as 0 appended.)
    const std::size_t appended = outputs.size() >= before ? outputs.size() - before : 0;
    if (status.ok() && appended != batch.rows()) {
      status = Internal("returned " + std::to_string(appended) + " outputs for " +
                        std::to_string(batch.rows()) + " rows");
    }
    if (!status.ok()) outputs.resize(before);
    return status;
  }

 private:
  Status call(const Batch& batch, std::vector<Value>& outputs) const {
    try {
      outputs.reserve(outputs.size() + batch.rows());
      return inner_->predict(batch, outputs);
    } catch (const std::exception& e) {
      return Internal(std::string("predict threw: ") + e.what());
    } catch (...) {
      return Internal("predict threw a non-standard exception");
    }
  }

  std::unique_ptr<Model> inner_;
};

}  // namespace

std::unique_ptr<Model> guarded(std::unique_ptr<Model> runtime_model) {
  return std::make_unique<GuardedModel>(std::move(runtime_model));
}

}  // namespace forklift
