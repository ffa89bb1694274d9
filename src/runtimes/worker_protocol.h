// The messages between a server and a runtime worker process (the python runtime's
// `processes` option): rows to predict one way, outputs or an error the other way. Binary,
// little-endian, in the schema's order, each message framed by its byte length (u32).
//
//   request:  u32 rows, then per row per feature: float f64 | int i64 | bool u8 |
//             string u32 length + bytes | float_vector `length` f32
//   response: u8 0, then one output per row (encoded as a feature of the output's type), or
//             u8 1, u32 length + the error message
#pragma once

#include <chrono>
#include <optional>
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

// Whole frames over a blocking socket (read_frame polls it when given a deadline). write_frame:
// false when the peer has gone.
bool write_frame(int fd, const std::string& payload);
enum class FrameRead { kOk, kClosed, kTooLarge, kTimedOut };
// The largest frame either side accepts; a header claiming more is refused before any allocation.
inline constexpr std::size_t kMaxFrameBytes = 256u << 20;
// Reads one frame into `payload`: kClosed when the peer has gone (EOF or an error), kTooLarge
// when its header claims more than `max_bytes`, kTimedOut when the whole frame has not arrived
// by `deadline` (none: waits for as long as the peer takes).
FrameRead read_frame(int fd, std::string& payload, std::size_t max_bytes = kMaxFrameBytes,
                     std::optional<std::chrono::steady_clock::time_point> deadline = {});

}  // namespace forklift::worker
