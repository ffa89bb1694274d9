// The built-in `torchscript` runtime: loads a module saved with torch.jit.save (model.pt) through
// libtorch and runs a whole batch as one [rows, columns] float32 tensor under inference mode.
// Built as a module of its own, libforklift_torchscript.so, which forklift opens on first use
// (runtimes/runtime_module.h says why).
//
// Features become columns in model.yaml's order (a float_vector feature `length` columns, a bool
// 0 or 1, a missing float NaN), as for the xgboost runtime. The module's forward takes that one
// tensor and returns [rows] or [rows, 1] for a float output, [rows, length] for a float_vector.
//
// Threads: forward is called from several serving threads at once (TorchScript's executor is
// thread-safe for inference). Each call uses `intra_op_threads` threads of its own (default 1:
// requests are already spread over cores).
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "forklift/runtime.h"
#include "runtimes/dense_rows.h"
#include "runtimes/runtime_module.h"

namespace forklift {
namespace {

Result<std::size_t> column_count(const Schema& schema) {
  Result<std::size_t> cols = dense_columns(schema, "torchscript");
  if (!cols.ok()) return cols;
  if (schema.output.type != ValueType::kFloat && schema.output.type != ValueType::kFloatVector) {
    return InvalidArgument(
        "the torchscript runtime produces floats; output.type must be float or float_vector");
  }
  return cols;
}

// The first line of a libtorch error (the rest is a C++ stack trace).
std::string first_line(const std::exception& e) {
  std::string message = e.what();
  if (auto cut = message.find('\n'); cut != std::string::npos) message.resize(cut);
  return message;
}

class TorchScriptModel final : public Model {
 public:
  TorchScriptModel(torch::jit::Module module, const Schema& schema, std::size_t cols, int threads)
      : module_(std::move(module)), schema_(schema), cols_(cols), threads_(threads) {}

  Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
    return run(dense_matrix(batch, cols_), batch.rows(), outputs);
  }

  Status run(float* data, std::size_t rows, std::vector<Value>& outputs) const {
    // at::set_num_threads applies to the calling thread's OpenMP pool: set once per thread.
    thread_local int threads_set = 0;
    if (threads_set != threads_) {
      at::set_num_threads(threads_);
      threads_set = threads_;
    }
    try {
      c10::InferenceMode inference;
      const at::Tensor input = torch::from_blob(
          data, {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols_)},
          torch::kFloat32);
      // forward is not const, but running a scripted module does not change it.
      auto& module = const_cast<torch::jit::Module&>(module_);
      const c10::IValue result = module.forward({input});
      if (!result.isTensor()) {
        return Internal("forward returned " + result.tagKind() + ", not a tensor");
      }
      const at::Tensor out = result.toTensor().to(torch::kFloat32).contiguous();
      const std::int64_t total = out.numel();
      const std::size_t per_row = rows == 0 ? 0 : static_cast<std::size_t>(total) / rows;
      if (out.dim() == 0 || out.size(0) != static_cast<std::int64_t>(rows) ||
          per_row != schema_.output.length) {
        return Internal(
            "forward returned a tensor of shape " + shape_of(out) + " for " + std::to_string(rows) +
            " row(s); model.yaml's output '" + schema_.output.name + "' needs [rows" +
            (schema_.output.length == 1 ? std::string("] or [rows, 1]")
                                        : ", " + std::to_string(schema_.output.length) + "]"));
      }
      const float* values = out.data_ptr<float>();
      for (std::size_t r = 0; r < rows; ++r) {
        if (schema_.output.type == ValueType::kFloat) {
          outputs.emplace_back(static_cast<double>(values[r]));
        } else {
          outputs.emplace_back(
              std::vector<float>(values + r * per_row, values + (r + 1) * per_row));
        }
      }
      return Status::Ok();
    } catch (const std::exception& e) {
      return Internal("TorchScript forward failed: " + first_line(e));
    }
  }

 private:
  static std::string shape_of(const at::Tensor& t) {
    std::string s = "[";
    for (std::int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
    return s + "]";
  }

  torch::jit::Module module_;
  Schema schema_;
  std::size_t cols_;
  int threads_;
};

Result<std::unique_ptr<Model>> load_torchscript(const LoadContext& ctx) {
  Result<std::size_t> cols = column_count(*ctx.schema);
  if (!cols.ok()) return cols.status();
  const std::string threads_option = ctx.option("intra_op_threads", "1");
  int threads = 0;
  try {
    threads = std::stoi(threads_option);
  } catch (const std::exception&) {
  }
  if (threads < 1 || threads > 256) {
    return InvalidArgument("runtime_options.intra_op_threads must be 1 to 256, not '" +
                           threads_option + "'");
  }
  torch::jit::Module module;
  try {
    module = torch::jit::load(ctx.artifact.string(), torch::kCPU);
  } catch (const std::exception& e) {
    return FailedPrecondition(
        ctx.artifact.string() +
        ": not a TorchScript module (save it with torch.jit.save): " + first_line(e));
  }
  module.eval();
  auto model = std::make_unique<TorchScriptModel>(std::move(module), *ctx.schema, *cols, threads);
  // One probe row checks the input width and output shape before any self-test runs.
  std::vector<float> probe(*cols, 0.0f);
  std::vector<Value> out;
  if (Status s = model->run(probe.data(), 1, out); !s.ok()) {
    return FailedPrecondition(ctx.artifact.string() + ": " + s.message());
  }
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace

}  // namespace forklift

// The module's entry (runtimes/runtime_module.h): forklift opens libforklift_torchscript.so the
// first time a version asks for runtime: torchscript, and loads through this.
extern "C" __attribute__((visibility("default"))) forklift::ModuleLoadFn
forklift_torchscript_loader() {
  return &forklift::load_torchscript;
}

// The build this module belongs to: forklift refuses a module whose string differs from its own.
extern "C" __attribute__((visibility("default"))) const char* forklift_torchscript_loader_abi() {
  return FORKLIFT_MODULE_ABI;
}
