#include "core/tensor_rows.h"

#include <optional>
#include <string>

#include "core/float_range.h"

namespace forklift {
namespace {

// Converts element `i` of `t` to the feature's type, or explains why it cannot be.
Status convert(const Tensor& t, std::size_t i, const FeatureSpec& spec, Value& out) {
  const auto bad = [&] {
    return InvalidArgument("input '" + t.name + "' has datatype " + t.datatype +
                           ", which cannot feed feature '" + spec.name + "' of type " +
                           std::string(to_string(spec.type)));
  };
  switch (spec.type) {
    case ValueType::kFloat: {
      const std::optional<double> d = t.number(i);
      if (!d) return bad();
      if (beyond_float_range(*d)) return float_range_error("a value of input '" + t.name + "'");
      out = *d;
      return Status::Ok();
    }
    case ValueType::kInt:
      if (t.info.element != Element::kInt && t.info.element != Element::kUInt) return bad();
      out = t.ints[i];
      return Status::Ok();
    case ValueType::kBool:
      if (t.info.element != Element::kBool) return bad();
      out = t.bools[i] != 0;
      return Status::Ok();
    case ValueType::kString:
      if (t.info.element != Element::kBytes) return bad();
      out = t.strings[i];
      return Status::Ok();
    case ValueType::kFloatVector:
      return bad();  // handled element-wise by the caller
  }
  return bad();
}

// Checks that `inputs` describe whole rows of the schema: names, shapes, no feature twice or
// missing. On success `feature_of[i]` is the feature tensor i feeds, or empty for the single
// [N, F] matrix. Nothing is allocated from the rows here: a request that cannot become a batch
// must be refused before one is sized (a single feature's tensor of N rows would otherwise size
// N rows of every feature).
Status check_inputs(const std::vector<Tensor>& inputs, const Schema& schema,
                    std::vector<std::size_t>& feature_of) {
  if (inputs.empty()) return InvalidArgument("'inputs' must not be empty");
  const std::int64_t rows = inputs.front().shape.front();
  for (const Tensor& t : inputs) {
    if (t.shape.front() != rows) {
      return InvalidArgument("input '" + t.name + "' has " + std::to_string(t.shape.front()) +
                             " rows but input '" + inputs.front().name + "' has " +
                             std::to_string(rows));
    }
  }
  if (inputs.size() == 1 && schema.index_of(inputs[0].name) < 0) {
    const Tensor& t = inputs[0];
    for (const auto& f : schema.features) {
      if (f.type == ValueType::kFloatVector || f.type == ValueType::kString) {
        return InvalidArgument("unknown input '" + t.name +
                               "'; this model takes one input per feature (see its metadata)");
      }
    }
    const std::size_t cols = schema.features.size();
    if (t.shape.size() != 2 || static_cast<std::size_t>(t.shape[1]) != cols) {
      return InvalidArgument("input '" + t.name +
                             "' is not a feature name, so it must have shape [N, " +
                             std::to_string(cols) + "] (one column per feature)");
    }
    feature_of.clear();
    return Status::Ok();
  }
  std::vector<bool> seen(schema.features.size(), false);
  feature_of.assign(inputs.size(), 0);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    const std::ptrdiff_t idx = schema.index_of(t.name);
    if (idx < 0) return InvalidArgument("unknown input '" + t.name + "'");
    const auto f = static_cast<std::size_t>(idx);
    if (seen[f]) return InvalidArgument("input '" + t.name + "' appears twice");
    seen[f] = true;
    feature_of[i] = f;
    const FeatureSpec& spec = schema.features[f];
    const std::size_t width = spec.length;
    const bool shape_ok =
        (t.shape.size() == 1 && width == 1 && spec.type != ValueType::kFloatVector) ||
        (t.shape.size() == 2 && static_cast<std::size_t>(t.shape[1]) == width);
    if (!shape_ok) {
      return InvalidArgument("input '" + t.name + "' must have shape " +
                             (spec.type == ValueType::kFloatVector
                                  ? "[N, " + std::to_string(width) + "]"
                                  : std::string("[N] or [N, 1]")));
    }
  }
  for (std::size_t f = 0; f < seen.size(); ++f) {
    if (!seen[f]) return InvalidArgument("missing input '" + schema.features[f].name + "'");
  }
  return Status::Ok();
}

}  // namespace

Status tensors_to_batch(const std::vector<Tensor>& inputs, Batch& batch) {
  const Schema& schema = batch.schema();
  std::vector<std::size_t> feature_of;
  if (Status s = check_inputs(inputs, schema, feature_of); !s.ok()) return s;
  // Every feature has its tensor, whose shape matched its data (read_input): the batch's
  // N x F values are at most one per element the body held.
  const auto n = static_cast<std::size_t>(inputs.front().shape.front());
  batch.reserve_rows(n);
  for (std::size_t r = 0; r < n; ++r) batch.add_row();
  // Rows are filled column by column; Batch stores them row-major.
  auto cell = [&](std::size_t r, std::size_t f) -> Value& { return batch.mutable_row(r)[f]; };

  if (feature_of.empty()) {  // one [N, F] matrix
    const Tensor& t = inputs[0];
    const std::size_t cols = schema.features.size();
    for (std::size_t r = 0; r < n; ++r) {
      for (std::size_t f = 0; f < cols; ++f) {
        if (Status s = convert(t, r * cols + f, schema.features[f], cell(r, f)); !s.ok()) {
          return s;
        }
      }
    }
    return Status::Ok();
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    const std::size_t f = feature_of[i];
    const FeatureSpec& spec = schema.features[f];
    const std::size_t width = spec.length;
    for (std::size_t r = 0; r < n; ++r) {
      if (spec.type != ValueType::kFloatVector) {
        if (Status s = convert(t, r, spec, cell(r, f)); !s.ok()) return s;
        continue;
      }
      std::vector<float> vec(width);
      for (std::size_t k = 0; k < width; ++k) {
        const std::optional<double> d = t.number(r * width + k);
        if (!d) {
          return InvalidArgument("input '" + t.name + "' must be numeric for feature '" +
                                 spec.name + "'");
        }
        if (beyond_float_range(*d)) return float_range_error("a value of input '" + t.name + "'");
        vec[k] = to_float_saturating(*d);  // in range: FLT_MAX at most
      }
      cell(r, f) = std::move(vec);
    }
  }
  return Status::Ok();
}

Status check_requested_outputs(const std::vector<std::string>& requested, const OutputSpec& output,
                               std::string_view model_id) {
  for (const auto& name : requested) {
    if (name != output.name) {
      return InvalidArgument("unknown output '" + name.substr(0, 256) + "'; model '" +
                             std::string(model_id) + "' produces '" + output.name + "'");
    }
  }
  return Status::Ok();
}

}  // namespace forklift
