// The messages between a server and a runtime worker process (the python runtime's
// `processes` option): rows to predict one way, outputs or an error the other way. Binary,
// little-endian, in the schema's order, each message framed by its byte length (u32).
//
//   request:  u32 rows, then one column per feature, each value of the column after the other:
//             float f64 | int i64 | bool u8 (0 or 1) | string u32 length + bytes |
//             float_vector `length` f32
//             (columns, not rows: the worker hands each one to Python as one array, copied
//             once, never as a Python object per row)
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
// The request as rows again (the worker itself reads columns: split_request); for the tests and
// the fuzz target.
Status decode_request(std::string_view message, Batch& batch);

// A request's columns, checked but not copied: `bytes` is the column's run of the message (for
// a string column, its length-prefixed values one after the other).
struct ColumnBytes {
  const FeatureSpec* spec = nullptr;
  std::string_view bytes;
};
// Splits a request into its `rows` and one column per feature of `schema`. Every size is checked
// against the bytes the message holds before anything is sized from it.
Status split_request(std::string_view message, const Schema& schema, std::size_t& rows,
                     std::vector<ColumnBytes>& columns);
std::string encode_response(const OutputSpec& output, const Status& status,
                            const std::vector<Value>& outputs);
// Appends the outputs (the worker's error as the Status). `malformed`, when given, is set when
// the message is not a well-formed answer at all (as against a well-formed error): a worker that
// sent one may be out of step with its requests.
Status decode_response(std::string_view message, const OutputSpec& output, std::size_t rows,
                       std::vector<Value>& outputs, bool* malformed = nullptr);

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
