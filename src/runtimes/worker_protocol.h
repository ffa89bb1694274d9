// The messages between a server and a runtime worker process (the python runtime's
// `processes` option): rows to predict one way, outputs or an error the other way. Binary,
// little-endian, in the schema's order, each message framed by its byte length (u32).
//
//   request:  u32 rows, then per row per feature: float f64 | int i64 | bool u8 |
//             string u32 length + bytes | float_vector `length` f32
//   response: u8 0, then one output per row (encoded as a feature of the output's type), or
//             u8 1, u32 length + the error message
#pragma once

#include <string>
#include <vector>

#include "forklift/status.h"
#include "forklift/types.h"

namespace forklift::worker {

std::string encode_request(const Batch& batch);
Status decode_request(std::string_view message, Batch& batch);
std::string encode_response(const OutputSpec& output, const Status& status,
                            const std::vector<Value>& outputs);
// Appends the outputs (the worker's error as the Status).
Status decode_response(std::string_view message, const OutputSpec& output, std::size_t rows,
                       std::vector<Value>& outputs);

// Whole frames over a blocking socket. False when the peer has gone (EOF or an error).
bool write_frame(int fd, const std::string& payload);
bool read_frame(int fd, std::string& payload);

}  // namespace forklift::worker
