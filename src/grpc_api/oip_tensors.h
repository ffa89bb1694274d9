// Open Inference Protocol tensors in protobuf (ModelInferRequest / ModelInferResponse) <-> the
// decoded tensors of core/tensor.h and a model's outputs. The JSON twin is api/v2/tensor_json.h.
//
// Inputs come as typed `contents` or as `raw_input_contents` (one bytes field per input, in their
// order, little-endian, BYTES elements each prefixed by a 4-byte little-endian length), never
// both. Everything is checked against the bytes that carry it: no size is taken from a shape the
// data does not hold.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"
#include "forklift/status.h"
#include "forklift/types.h"
#include "open_inference_grpc.pb.h"

namespace forklift::grpc_api {

struct DecodedInferRequest {
  std::vector<Tensor> inputs;
  std::vector<std::string> requested_outputs;
  std::string experiment_key;  // parameters["experiment_key"]: sticky routing key for splits
  bool raw = false;            // the inputs came as raw_input_contents: answer the same way
};

// Decodes `request`'s inputs, requested outputs and parameters into `out`.
Status decode_infer_request(const inference::ModelInferRequest& request, DecodedInferRequest& out);

// Fills `response`'s single output tensor with `outputs` (one per row), as raw_output_contents
// when `raw`, else as typed contents. Datatypes as the model metadata advertises them.
void encode_outputs(const OutputSpec& output, const std::vector<Value>& outputs, bool raw,
                    inference::ModelInferResponse& response);

}  // namespace forklift::grpc_api
