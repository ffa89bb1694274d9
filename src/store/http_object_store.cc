#include "store/http_object_store.h"

#include <simdjson.h>

#include "common/json_writer.h"
#include "common/sha256.h"
#include "store/file_manifest.h"

namespace forklift {

Result<std::vector<RepositoryIndexEntry>> parse_repository_index(std::string_view json) {
  if (json.size() > kMaxRepositoryIndexBytes) {
    return FailedPrecondition("the repository index is larger than " +
                              std::to_string(kMaxRepositoryIndexBytes) + " bytes");
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  const simdjson::padded_string padded(json);
  if (auto error = parser.parse(padded).get(root)) {
    return FailedPrecondition(std::string("the repository index is not valid JSON: ") +
                              simdjson::error_message(error));
  }
  std::int64_t format = 0;
  simdjson::dom::array versions;
  if (root["format"].get_int64().get(format) || format != 1 ||
      root["versions"].get_array().get(versions)) {
    return FailedPrecondition("the repository index needs \"format\": 1 and a \"versions\" array");
  }
  std::vector<RepositoryIndexEntry> out;
  for (simdjson::dom::element v : versions) {
    std::string_view path;
    std::string_view sha;
    // A bad entry costs only itself.
    if (v["path"].get_string().get(path) || !is_safe_relative_path(path)) continue;
    if (v["files_sha256"].get_string().get(sha) || !is_sha256_hex(sha)) continue;
    out.push_back({std::string(path), std::string(sha)});
    if (out.size() > 100'000)
      return FailedPrecondition("the repository index lists over 100,000 versions");
  }
  return out;
}

std::string repository_index_json(const std::vector<RepositoryIndexEntry>& entries) {
  std::string out = "{\"format\":1,\"versions\":[";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    out += i ? ",\n  {\"path\":" : "\n  {\"path\":";
    json::append_string(out, entries[i].path);
    out += ",\"files_sha256\":\"" + entries[i].files_sha256 + "\"}";
  }
  out += "\n]}\n";
  return out;
}

HttpObjectStore::HttpObjectStore(std::string url, std::string ca_file,
                                 std::chrono::milliseconds timeout)
    : url_(std::move(url)), base_(url_), ca_file_(std::move(ca_file)), timeout_(timeout) {
  while (base_.ends_with('/')) base_.pop_back();
}

Result<std::vector<ObjectInfo>> HttpObjectStore::list_manifests(std::size_t max_keys) {
  std::lock_guard lock(mu_);
  HttpCall call{.url = base_ + "/" + std::string(kRepositoryIndexName),
                .timeout = timeout_,
                .ca_file = ca_file_,
                .max_body_bytes = kMaxRepositoryIndexBytes,
                .cancel = cancel_};
  if (!index_etag_.empty()) call.headers.emplace_back("If-None-Match", index_etag_);
  HttpClient client;
  auto answer = client.call(call);
  if (!answer.ok()) return answer.status();
  if (answer->status == 304) return index_;  // unchanged since the last poll
  if (answer->status == 404) {
    return FailedPrecondition(url_ + " has no " + std::string(kRepositoryIndexName) +
                              " (a static repository needs one: forklift push writes it)");
  }
  if (answer->status != 200) {
    const std::string what = "reading " + url_ + "/" + std::string(kRepositoryIndexName) +
                             " failed (HTTP " + std::to_string(answer->status) + ")";
    return answer->status >= 500 || answer->status == 429 ? Unavailable(what)
                                                          : FailedPrecondition(what);
  }
  auto entries = parse_repository_index(answer->body);
  if (!entries.ok()) return entries.status();
  if (entries->size() > max_keys) {
    return FailedPrecondition(url_ + "'s index lists more than " + std::to_string(max_keys) +
                              " versions");
  }
  std::vector<ObjectInfo> out;
  for (const auto& e : *entries) {
    out.push_back({e.path + "/" + std::string(kFileManifestName), 0, e.files_sha256});
  }
  index_ = out;
  index_etag_ = std::string(answer->header("etag"));
  return out;
}

Status HttpObjectStore::get(const std::string& key, std::uint64_t max_bytes,
                            const ObjectSink& sink) {
  const std::string what = "reading " + base_ + "/" + key;
  HttpClient client;
  auto answer = client.call({.url = base_ + "/" + uri_encode(key, true),
                             .timeout = std::chrono::milliseconds(0),  // a stall is the limit
                             .stall_timeout = timeout_,
                             .ca_file = ca_file_,
                             .max_body_bytes = 64 << 10,
                             .sink = at_most(max_bytes, what, sink),
                             .cancel = cancel_});
  if (!answer.ok()) return answer.status();
  if (answer->status == 404) return NotFound(what + ": no such file");
  if (answer->status >= 500 || answer->status == 429) {
    return Unavailable(what + " failed (HTTP " + std::to_string(answer->status) + ")");
  }
  if (answer->status != 200) {
    return FailedPrecondition(what + " failed (HTTP " + std::to_string(answer->status) + ")");
  }
  return Status::Ok();
}

}  // namespace forklift
