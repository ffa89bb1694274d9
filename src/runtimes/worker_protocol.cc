#include "runtimes/worker_protocol.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace forklift::worker {
namespace {

template <class T>
void put(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out.append(bytes, sizeof(T));
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  template <class T>
  bool get(T& v) {
    if (in_.size() < sizeof(T)) return false;
    std::memcpy(&v, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return true;
  }
  bool bytes(std::size_t n, std::string& v) {
    if (in_.size() < n) return false;
    v.assign(in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  bool skip(std::size_t n) {
    if (in_.size() < n) return false;
    in_.remove_prefix(n);
    return true;
  }
  std::string_view view() const { return in_; }
  bool done() const { return in_.empty(); }
  std::size_t remaining() const { return in_.size(); }

 private:
  std::string_view in_;
};

void put_value(std::string& out, ValueType type, std::size_t length, const Value& v) {
  switch (type) {
    case ValueType::kFloat:
      put<double>(out, std::get<double>(v));
      break;
    case ValueType::kInt:
      put<std::int64_t>(out, std::get<std::int64_t>(v));
      break;
    case ValueType::kBool:
      put<std::uint8_t>(out, std::get<bool>(v) ? 1 : 0);
      break;
    case ValueType::kString: {
      const auto& s = std::get<std::string>(v);
      put<std::uint32_t>(out, static_cast<std::uint32_t>(s.size()));
      out += s;
      break;
    }
    case ValueType::kFloatVector: {
      const auto& vec = std::get<std::vector<float>>(v);
      for (std::size_t i = 0; i < length; ++i) put<float>(out, vec[i]);
      break;
    }
  }
}

// The fewest bytes one value of `type` takes on the wire: exact for every type but a string (its
// 4-byte length, when empty). A schema whose rows take no bytes at all (no features, or only
// zero-length vectors, which the manifest refuses) can justify no row count.
std::size_t min_encoded_bytes(ValueType type, std::size_t length) {
  switch (type) {
    case ValueType::kFloat:
    case ValueType::kInt:
      return 8;
    case ValueType::kBool:
      return 1;
    case ValueType::kString:
      return 4;
    case ValueType::kFloatVector:
      return 4 * length;
  }
  return 1;
}

bool get_value(Reader& in, ValueType type, std::size_t length, Value& v) {
  switch (type) {
    case ValueType::kFloat: {
      double d = 0;
      if (!in.get(d)) return false;
      v = d;
      return true;
    }
    case ValueType::kInt: {
      std::int64_t i = 0;
      if (!in.get(i)) return false;
      v = i;
      return true;
    }
    case ValueType::kBool: {
      std::uint8_t b = 0;
      if (!in.get(b)) return false;
      v = b != 0;
      return true;
    }
    case ValueType::kString: {
      std::uint32_t n = 0;
      std::string s;
      if (!in.get(n) || !in.bytes(n, s)) return false;
      v = std::move(s);
      return true;
    }
    case ValueType::kFloatVector: {
      std::vector<float> vec(length);
      for (auto& f : vec) {
        if (!in.get(f)) return false;
      }
      v = std::move(vec);
      return true;
    }
  }
  return false;
}

}  // namespace

std::string encode_request(const Batch& batch) {
  std::string out;
  const std::size_t rows = batch.rows();
  put<std::uint32_t>(out, static_cast<std::uint32_t>(rows));
  const Schema& schema = batch.schema();
  std::size_t row_bytes = 0;
  for (const auto& f : schema.features) row_bytes += min_encoded_bytes(f.type, f.length);
  out.reserve(4 + rows * row_bytes);
  for (std::size_t f = 0; f < schema.features.size(); ++f) {
    const FeatureSpec& spec = schema.features[f];
    for (std::size_t r = 0; r < rows; ++r) put_value(out, spec.type, spec.length, batch.row(r)[f]);
  }
  return out;
}

Status split_request(std::string_view message, const Schema& schema, std::size_t& rows,
                     std::vector<ColumnBytes>& columns) {
  Reader in(message);
  std::uint32_t claimed = 0;
  if (!in.get(claimed)) return InvalidArgument("truncated request");
  rows = claimed;
  // Every row takes at least min_row_bytes of the message: a count the bytes cannot hold is
  // refused before anything is sized from it.
  std::size_t min_row_bytes = 0;
  for (const auto& f : schema.features) min_row_bytes += min_encoded_bytes(f.type, f.length);
  if (rows > 0 && (min_row_bytes == 0 || rows > in.remaining() / min_row_bytes)) {
    return InvalidArgument("request claims " + std::to_string(rows) +
                           " rows, more than its bytes hold");
  }
  columns.clear();
  for (const FeatureSpec& spec : schema.features) {
    const std::string_view rest = in.view();
    std::size_t size = 0;
    if (spec.type == ValueType::kString) {
      for (std::size_t r = 0; r < rows; ++r) {
        std::uint32_t n = 0;
        if (!in.get(n) || !in.skip(n)) return InvalidArgument("truncated request");
      }
      size = rest.size() - in.remaining();
    } else {
      size = rows * min_encoded_bytes(spec.type, spec.length);  // bounded by the check above
      if (!in.skip(size)) return InvalidArgument("truncated request");
      if (spec.type == ValueType::kBool &&
          !std::all_of(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(size),
                       [](char b) { return b == 0 || b == 1; })) {
        return InvalidArgument("a bool that is neither 0 nor 1");
      }
    }
    columns.push_back({&spec, rest.substr(0, size)});
  }
  return in.done() ? Status::Ok() : InvalidArgument("trailing bytes in request");
}

Status decode_request(std::string_view message, Batch& batch) {
  std::size_t rows = 0;
  std::vector<ColumnBytes> columns;
  if (Status s = split_request(message, batch.schema(), rows, columns); !s.ok()) return s;
  batch.reserve_rows(rows);
  const std::size_t first = batch.rows();
  for (std::size_t r = 0; r < rows; ++r) batch.add_row();
  for (std::size_t f = 0; f < columns.size(); ++f) {
    Reader in(columns[f].bytes);
    for (std::size_t r = 0; r < rows; ++r) {
      if (!get_value(in, columns[f].spec->type, columns[f].spec->length,
                     batch.mutable_row(first + r)[f])) {
        return InvalidArgument("truncated request");  // split_request has checked: unreachable
      }
    }
  }
  return Status::Ok();
}

std::string encode_response(const OutputSpec& output, const Status& status,
                            const std::vector<Value>& outputs) {
  std::string out;
  if (!status.ok()) {
    put<std::uint8_t>(out, 1);
    put<std::uint32_t>(out, static_cast<std::uint32_t>(status.message().size()));
    out += status.message();
    return out;
  }
  put<std::uint8_t>(out, 0);
  for (const Value& v : outputs) put_value(out, output.type, output.length, v);
  return out;
}

Status decode_response(std::string_view message, const OutputSpec& output, std::size_t rows,
                       std::vector<Value>& outputs, bool* malformed) {
  if (malformed != nullptr) *malformed = true;
  Reader in(message);
  std::uint8_t kind = 0;
  if (!in.get(kind)) return Internal("empty answer from the worker process");
  if (kind == 1) {
    std::uint32_t n = 0;
    std::string why;
    if (!in.get(n) || !in.bytes(n, why)) return Internal("truncated error from the worker process");
    if (!in.done()) return Internal("trailing bytes in the worker's error");
    if (malformed != nullptr) *malformed = false;
    return Internal(why);
  }
  if (kind != 0) return Internal("an answer of unknown kind from the worker process");
  const std::size_t before = outputs.size();
  for (std::size_t r = 0; r < rows; ++r) {
    Value v;
    if (!get_value(in, output.type, output.length, v)) {
      outputs.resize(before);
      return Internal("truncated answer from the worker process");
    }
    outputs.push_back(std::move(v));
  }
  if (!in.done()) {
    outputs.resize(before);
    return Internal("trailing bytes in the worker's answer");
  }
  if (malformed != nullptr) *malformed = false;
  return Status::Ok();
}

bool write_frame(int fd, const std::string& payload) {
  std::string frame;
  put<std::uint32_t>(frame, static_cast<std::uint32_t>(payload.size()));
  frame += payload;
  std::size_t sent = 0;
  while (sent < frame.size()) {
    const ssize_t n = ::send(fd, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

FrameRead read_frame(int fd, std::string& payload, std::size_t max_bytes,
                     std::optional<std::chrono::steady_clock::time_point> deadline) {
  // Waits for bytes until the deadline: a peer that sent part of a frame and stalled must not
  // hold the reader for good.
  const auto wait_readable = [&]() -> FrameRead {
    if (!deadline) return FrameRead::kOk;
    for (;;) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(
          *deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return FrameRead::kTimedOut;
      pollfd p{fd, POLLIN, 0};
      const int n = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 1 << 30)));
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) continue;   // re-checks the clock
      return FrameRead::kOk;  // readable, or an error the read reports
    }
  };
  const auto read_all = [&](char* into, std::size_t size) -> FrameRead {
    std::size_t got = 0;
    while (got < size) {
      if (FrameRead w = wait_readable(); w != FrameRead::kOk) return w;
      const ssize_t n = ::read(fd, into + got, size - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return FrameRead::kClosed;
      got += static_cast<std::size_t>(n);
    }
    return FrameRead::kOk;
  };
  std::uint32_t size = 0;
  char header[sizeof size];
  if (FrameRead r = read_all(header, sizeof header); r != FrameRead::kOk) return r;
  std::memcpy(&size, header, sizeof size);
  if (size > max_bytes) return FrameRead::kTooLarge;
  // The payload grows with the bytes that arrive, not with what the header claims.
  payload.clear();
  constexpr std::size_t kStep = 1 << 20;
  while (payload.size() < size) {
    const std::size_t at = payload.size();
    const std::size_t step = std::min<std::size_t>(kStep, size - at);
    payload.resize(at + step);
    if (FrameRead r = read_all(payload.data() + at, step); r != FrameRead::kOk) return r;
  }
  return FrameRead::kOk;
}

}  // namespace forklift::worker
