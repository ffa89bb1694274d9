// Decoding Open Inference Protocol v2 request bodies (REST): tensors with their datatype, shape
// and data, checked as they are read (api/v2_handler.cc routes them; core/tensor_rows.h maps them
// to a model's rows).
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"
#include "forklift/status.h"

namespace forklift {

struct V2Request {
  std::string id;
  std::string experiment_key;  // parameters.experiment_key: sticky routing key for splits
  std::vector<Tensor> inputs;
  std::vector<std::string> requested_outputs;
  bool explain = false;  // parameters.explain: each row's feature contributions as well
};

// Parses `body` (padded in place by simdjson) into `out`. Every dimension of a shape is positive,
// at most 8 of them, and their product must equal the elements read: nothing is sized from a
// shape the data does not justify.
Status parse_v2_request(std::string& body, V2Request& out);

}  // namespace forklift
