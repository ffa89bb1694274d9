// Bytes from a python worker process (or, the other way, from the server) through the worker
// protocol: frames read from a socket, then decoded as a request (the worker's side) and as a
// response (the server's). Oracle: no crash or sanitizer report, and no allocation sized by a
// count that the bytes cannot justify (run with -malloc_limit_mb by scripts/fuzz.sh).
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtimes/worker_protocol.h"

namespace {

forklift::Schema every_type() {
  forklift::Schema s;
  s.features = {{"x", forklift::ValueType::kFloat, 1, true},
                {"n", forklift::ValueType::kInt, 1, false},
                {"b", forklift::ValueType::kBool, 1, false},
                {"s", forklift::ValueType::kString, 1, false},
                {"v", forklift::ValueType::kFloatVector, 3, false}};
  s.output = forklift::OutputSpec{"out", forklift::ValueType::kString, 1};
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const forklift::Schema schema = every_type();
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // The message itself, decoded both ways.
  {
    forklift::Batch batch(schema);
    (void)forklift::worker::decode_request(bytes, batch);
    std::vector<forklift::Value> outputs;
    const std::size_t rows = size > 0 ? data[0] : 0;
    (void)forklift::worker::decode_response(bytes, schema.output, rows, outputs);
  }
  // The same bytes as a stream of frames from a peer that then goes away.
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) std::abort();
  const ssize_t sent = ::write(fds[1], data, size);  // fuzz inputs fit the socket's buffer
  (void)sent;
  ::close(fds[1]);
  std::string payload;
  while (forklift::worker::read_frame(fds[0], payload, 1 << 20) ==
         forklift::worker::FrameRead::kOk) {
    forklift::Batch batch(schema);
    (void)forklift::worker::decode_request(payload, batch);
  }
  ::close(fds[0]);
  return 0;
}
