// Open Inference Protocol tensors -> rows of a model's schema, beside features_json.h (which does
// the same for forklift's own JSON). A model's features map to input tensors in one of two ways:
//  * one tensor per feature, named after it, shape [N] or [N, 1] (or [N, length] for a
//    float_vector): what the model metadata advertises;
//  * when every feature is a scalar number, a single tensor of shape [N, F] whose columns are the
//    features in model.yaml's order (what XGBoost clients of KServe and MLServer send).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "forklift/status.h"
#include "forklift/types.h"

namespace forklift {

// Appends the rows `inputs` describe to `batch` (in its schema). Names, shapes and completeness
// are checked before anything is sized from the rows; each element is converted to its feature's
// type or refused with a message naming the input.
Status tensors_to_batch(const std::vector<Tensor>& inputs, Batch& batch);

// The outputs a request named (may be none): each must be `output`, the model's one output.
Status check_requested_outputs(const std::vector<std::string>& requested, const OutputSpec& output,
                               std::string_view model_id);

}  // namespace forklift
