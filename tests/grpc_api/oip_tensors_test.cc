// Open Inference Protocol tensors in protobuf: typed and raw contents decoded with every check,
// outputs encoded both ways, and forklift's Status mapped to gRPC's.
#include "grpc_api/oip_tensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "grpc_api/grpc_status.h"
#include "rpc_status.pb.h"

namespace forklift::grpc_api {
namespace {

template <class T>
std::string little_endian(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));  // this test runs on little-endian machines only
    out.append(bytes, sizeof(T));
  }
  return out;
}

inference::ModelInferRequest one_input(const std::string& datatype,
                                       std::initializer_list<std::int64_t> shape) {
  inference::ModelInferRequest req;
  auto* in = req.add_inputs();
  in->set_name("x");
  in->set_datatype(datatype);
  for (auto d : shape) in->add_shape(d);
  return req;
}

Status decode(const inference::ModelInferRequest& req, DecodedInferRequest& out) {
  return decode_infer_request(req, out);
}

TEST(OipTensors, TypedContentsOfEachDatatype) {
  auto req = one_input("FP32", {2, 2});
  for (float f : {1.5f, -2.f, 3.f, 4.25f})
    req.mutable_inputs(0)->mutable_contents()->add_fp32_contents(f);
  DecodedInferRequest out;
  ASSERT_TRUE(decode(req, out).ok());
  EXPECT_FALSE(out.raw);
  EXPECT_EQ(out.inputs[0].floats, (std::vector<double>{1.5, -2, 3, 4.25}));

  req = one_input("INT16", {3});
  for (int v : {-5, 0, 32767}) req.mutable_inputs(0)->mutable_contents()->add_int_contents(v);
  out = {};
  ASSERT_TRUE(decode(req, out).ok());
  EXPECT_EQ(out.inputs[0].ints, (std::vector<std::int64_t>{-5, 0, 32767}));

  req = one_input("BYTES", {2});
  req.mutable_inputs(0)->mutable_contents()->add_bytes_contents("sf");
  req.mutable_inputs(0)->mutable_contents()->add_bytes_contents(std::string("a\0b", 3));
  out = {};
  ASSERT_TRUE(decode(req, out).ok());
  EXPECT_EQ(out.inputs[0].strings[1], std::string("a\0b", 3));

  req = one_input("BOOL", {1});
  req.mutable_inputs(0)->mutable_contents()->add_bool_contents(true);
  out = {};
  ASSERT_TRUE(decode(req, out).ok());
  EXPECT_EQ(out.inputs[0].bools, (std::vector<std::uint8_t>{1}));
}

TEST(OipTensors, RawContentsAreLittleEndianAndLengthPrefixedForBytes) {
  auto req = one_input("FP64", {2});
  req.add_raw_input_contents(little_endian<double>({0.25, -8}));
  DecodedInferRequest out;
  ASSERT_TRUE(decode(req, out).ok());
  EXPECT_TRUE(out.raw);
  EXPECT_EQ(out.inputs[0].floats, (std::vector<double>{0.25, -8}));

  req = one_input("UINT16", {3});
  req.add_raw_input_contents(little_endian<std::uint16_t>({1, 65535, 0}));
  out = {};
  ASSERT_TRUE(decode(req, out).ok());
  EXPECT_EQ(out.inputs[0].ints, (std::vector<std::int64_t>{1, 65535, 0}));

  req = one_input("BYTES", {2});
  std::string raw = little_endian<std::uint32_t>({2}) + "sf" + little_endian<std::uint32_t>({0});
  req.add_raw_input_contents(raw);
  out = {};
  ASSERT_TRUE(decode(req, out).ok());
  EXPECT_EQ(out.inputs[0].strings, (std::vector<std::string>{"sf", ""}));
}

TEST(OipTensors, HostileRequestsAreRefusedBeforeAnythingIsSizedFromThem) {
  const auto refused = [](const inference::ModelInferRequest& req, const std::string& words) {
    DecodedInferRequest out;
    const Status s = decode_infer_request(req, out);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << words;
    EXPECT_NE(s.message().find(words), std::string::npos) << s.message();
  };
  refused(inference::ModelInferRequest(), "'inputs' is required");
  auto req = one_input("FP32", {1LL << 40, 1LL << 40});
  req.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
  refused(req, "too many");
  req = one_input("FP32", {0});
  refused(req, "positive");
  req = one_input("FP32", {1, 1, 1, 1, 1, 1, 1, 1, 1});
  refused(req, "dimensions");
  req = one_input("FP32", {});
  refused(req, "must not be empty");
  req = one_input("FP16", {1});
  refused(req, "not supported");
  req = one_input("FP32", {2});
  req.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
  refused(req, "holds 2 element(s)");
  req = one_input("FP32", {1});
  req.mutable_inputs(0)->mutable_contents()->add_fp64_contents(1);
  refused(req, "only there");
  req = one_input("FP64", {1});
  req.mutable_inputs(0)->mutable_contents()->add_fp64_contents(std::nan(""));
  refused(req, "finite");
  req = one_input("FP32", {1});
  req.mutable_inputs(0)->mutable_contents()->add_fp32_contents(
      std::numeric_limits<float>::infinity());
  refused(req, "finite");
  req = one_input("INT8", {1});
  req.mutable_inputs(0)->mutable_contents()->add_int_contents(300);
  refused(req, "out of range");
  req = one_input("UINT64", {1});
  req.mutable_inputs(0)->mutable_contents()->add_uint64_contents(~0ULL);
  refused(req, "out of range");
  req = one_input("FP32", {1});
  req.add_raw_input_contents("abc");
  refused(req, "whole number");
  req = one_input("BOOL", {1});
  req.add_raw_input_contents("\x02");
  refused(req, "0 or 1");
  req = one_input("BYTES", {1});
  req.add_raw_input_contents(little_endian<std::uint32_t>({0xffffffffu}) + "x");
  refused(req, "longer than");
  req = one_input("BYTES", {1});
  req.add_raw_input_contents("\x01\x00");
  refused(req, "inside an element's length");
  req = one_input("FP32", {1});
  req.add_raw_input_contents(little_endian<float>({1}));
  req.add_raw_input_contents(little_endian<float>({1}));
  refused(req, "one per input");
  req = one_input("FP32", {1});
  req.add_raw_input_contents(little_endian<float>({1}));
  req.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
  refused(req, "must be empty");
  req = one_input("FP32", {1});
  req.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
  (*req.mutable_parameters())["experiment_key"].set_bool_param(true);
  refused(req, "experiment_key");
}

TEST(OipTensors, OutputsAreEncodedTypedOrRaw) {
  const OutputSpec scalar{"y", ValueType::kFloat, 1};
  const std::vector<Value> values{1.5, 2.0};
  inference::ModelInferResponse typed;
  encode_outputs(scalar, values, false, typed);
  ASSERT_EQ(typed.outputs_size(), 1);
  EXPECT_EQ(typed.outputs(0).datatype(), "FP32");
  EXPECT_EQ(typed.outputs(0).shape(0), 2);
  EXPECT_EQ(typed.outputs(0).contents().fp32_contents(1), 2.0f);
  EXPECT_EQ(typed.raw_output_contents_size(), 0);

  inference::ModelInferResponse raw;
  encode_outputs(scalar, values, true, raw);
  ASSERT_EQ(raw.raw_output_contents_size(), 1);
  EXPECT_EQ(raw.raw_output_contents(0), little_endian<float>({1.5f, 2.0f}));
  EXPECT_EQ(raw.outputs(0).contents().fp32_contents_size(), 0);

  // A model's double beyond float's range is that float's infinity (a plain cast was undefined).
  inference::ModelInferResponse huge;
  encode_outputs(scalar, {1e300, -1e300}, false, huge);
  EXPECT_EQ(huge.outputs(0).contents().fp32_contents(0), std::numeric_limits<float>::infinity());
  EXPECT_EQ(huge.outputs(0).contents().fp32_contents(1), -std::numeric_limits<float>::infinity());

  const OutputSpec vector{"v", ValueType::kFloatVector, 3};
  inference::ModelInferResponse vec;
  encode_outputs(vector, {std::vector<float>{1, 2, 3}}, true, vec);
  EXPECT_EQ(vec.outputs(0).shape_size(), 2);
  EXPECT_EQ(vec.outputs(0).shape(1), 3);
  EXPECT_EQ(vec.raw_output_contents(0).size(), 12u);

  const OutputSpec text{"label", ValueType::kString, 1};
  inference::ModelInferResponse strings;
  encode_outputs(text, {std::string("ok")}, true, strings);
  EXPECT_EQ(strings.raw_output_contents(0), little_endian<std::uint32_t>({2}) + "ok");
}

TEST(GrpcStatus, EachCodeMapsAndSheddingCarriesRetryInfo) {
  EXPECT_EQ(to_grpc(InvalidArgument("x"), nullptr).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(to_grpc(NotFound("x"), nullptr).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(to_grpc(Internal("x"), nullptr).error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(to_grpc(Status(StatusCode::kDeadlineExceeded, "x"), nullptr).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  const grpc::Status shed = to_grpc(Unavailable("queue full"), nullptr);
  EXPECT_EQ(shed.error_code(), grpc::StatusCode::UNAVAILABLE);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(shed.error_details()));
  google::rpc::RetryInfo retry;
  ASSERT_EQ(details.details_size(), 1);
  ASSERT_TRUE(details.details(0).UnpackTo(&retry));
  EXPECT_EQ(retry.retry_delay().seconds(), 1);
  EXPECT_EQ(to_grpc(Unavailable(std::string(5000, 'm')), nullptr).error_message().size(), 1000u);
}

}  // namespace
}  // namespace forklift::grpc_api
