// A ModelInferRequest's bytes, as a gRPC client would send them, through the protobuf decoding
// (grpc_api/oip_tensors.h), the rows of model `m` (one feature of every type) and the answer's
// encoding, typed or raw. Oracle: no crash or sanitizer report; a request that decodes and maps
// to rows has exactly as many rows as its first input's first dimension, and its answer has one
// output value per row.
#include "core/tensor_rows.h"
#include "fuzz_common.h"
#include "grpc_api/oip_tensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static forklift::fuzz::Served served;
  inference::ModelInferRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  forklift::grpc_api::DecodedInferRequest decoded;
  if (!forklift::grpc_api::decode_infer_request(request, decoded).ok()) return 0;
  auto target = served.inference.route("m", std::nullopt);
  if (!target.ok()) std::abort();
  forklift::Batch batch(target->schema());
  if (!forklift::tensors_to_batch(decoded.inputs, batch).ok()) return 0;
  if (batch.rows() != static_cast<std::size_t>(decoded.inputs.front().shape.front())) std::abort();
  const std::vector<forklift::Value> outputs(batch.rows(), forklift::Value(42.0));
  inference::ModelInferResponse response;
  forklift::grpc_api::encode_outputs(target->schema().output, outputs, decoded.raw, response);
  const std::size_t expected = decoded.raw ? 4 * batch.rows() : 0;
  if (decoded.raw && response.raw_output_contents(0).size() != expected) std::abort();
  if (!decoded.raw &&
      response.outputs(0).contents().fp32_contents_size() != static_cast<int>(batch.rows())) {
    std::abort();
  }
  return 0;
}
