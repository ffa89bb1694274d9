#include "store/object_store.h"

namespace forklift {

ObjectSink at_most(std::uint64_t max_bytes, std::string what, ObjectSink sink) {
  return [max_bytes, what = std::move(what), sink = std::move(sink),
          received = std::uint64_t{0}](std::string_view piece) mutable -> Status {
    received += piece.size();
    if (received > max_bytes) {
      return FailedPrecondition(what + ": larger than " + std::to_string(max_bytes) + " bytes");
    }
    return sink(piece);
  };
}

Result<std::string> get_object(ObjectStore& store, const std::string& key,
                               std::uint64_t max_bytes) {
  std::string body;
  Status s = store.get(key, max_bytes, [&](std::string_view piece) {
    body.append(piece);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return body;
}

}  // namespace forklift
