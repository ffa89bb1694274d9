#include "store/file_manifest.h"

#include <simdjson.h>

#include <algorithm>
#include <map>
#include <set>
#include <system_error>

#include "common/json_writer.h"
#include "common/sha256.h"

namespace forklift {

std::uint64_t FileManifest::total_bytes() const {
  std::uint64_t total = 0;
  for (const auto& f : files) total += f.size;  // bounded at parse time
  return total;
}

bool is_safe_relative_path(std::string_view path) {
  if (path.empty() || path.size() > 1024 || path.front() == '/') return false;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    for (const char c : part) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\') return false;
    }
    start = end + 1;
  }
  return true;
}

Result<FileManifest> parse_file_manifest(std::string_view json, std::uint64_t max_version_bytes) {
  if (json.size() > kMaxFileManifestBytes) {
    return FailedPrecondition("the file manifest is larger than " +
                              std::to_string(kMaxFileManifestBytes) + " bytes");
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  const simdjson::padded_string padded(json);
  if (auto error = parser.parse(padded).get(root)) {
    return FailedPrecondition(std::string("the file manifest is not valid JSON: ") +
                              simdjson::error_message(error));
  }
  std::int64_t format = 0;
  if (root["format"].get_int64().get(format) || format != 1) {
    return FailedPrecondition("the file manifest's \"format\" must be 1");
  }
  simdjson::dom::array files;
  if (root["files"].get_array().get(files)) {
    return FailedPrecondition("the file manifest has no \"files\" array");
  }
  if (files.size() > kMaxVersionFiles) {
    return FailedPrecondition("the file manifest lists more than " +
                              std::to_string(kMaxVersionFiles) + " files");
  }
  FileManifest manifest;
  std::uint64_t total = 0;
  std::size_t index = 0;
  for (simdjson::dom::element f : files) {
    const std::string where = "file " + std::to_string(index++) + " of the file manifest";
    std::string_view path;
    std::uint64_t size = 0;
    std::string_view sha;
    if (f["path"].get_string().get(path) || !is_safe_relative_path(path)) {
      return FailedPrecondition(where + " has no safe relative \"path\"");
    }
    if (path == kFileManifestName) {
      return FailedPrecondition(where + " lists the file manifest itself");
    }
    if (f["size"].get_uint64().get(size)) {
      return FailedPrecondition(where + " has no \"size\" (a non-negative integer)");
    }
    if (f["sha256"].get_string().get(sha) || !is_sha256_hex(sha)) {
      return FailedPrecondition(where + " has no \"sha256\" (64 lower-case hex characters)");
    }
    if (size > max_version_bytes || total > max_version_bytes - size) {
      return FailedPrecondition("the version's files add up to more than " +
                                std::to_string(max_version_bytes) + " bytes (--max-version-mb)");
    }
    total += size;
    manifest.files.push_back({std::string(path), size, std::string(sha)});
  }
  std::sort(manifest.files.begin(), manifest.files.end(),
            [](const ManifestFile& a, const ManifestFile& b) { return a.path < b.path; });
  std::map<std::string_view, std::uint64_t> size_of_digest;
  for (const auto& f : manifest.files) {
    const auto [it, fresh] = size_of_digest.emplace(f.sha256, f.size);
    if (!fresh && it->second != f.size) {
      return FailedPrecondition("the file manifest gives one SHA-256 two different sizes");
    }
  }
  for (std::size_t i = 1; i < manifest.files.size(); ++i) {
    if (manifest.files[i].path == manifest.files[i - 1].path) {
      return FailedPrecondition("the file manifest lists a path twice");
    }
    // "a" as a file and "a/b" as another cannot both be made on disk.
    if (manifest.files[i].path.starts_with(manifest.files[i - 1].path + "/")) {
      return FailedPrecondition("the file manifest lists a path both as a file and a directory");
    }
  }
  return manifest;
}

std::string file_manifest_json(const FileManifest& manifest) {
  std::string out = "{\"format\":1,\"files\":[";
  for (std::size_t i = 0; i < manifest.files.size(); ++i) {
    const auto& f = manifest.files[i];
    out += i ? ",\n  {\"path\":" : "\n  {\"path\":";
    json::append_string(out, f.path);
    out += ",\"size\":" + std::to_string(f.size) + ",\"sha256\":\"" + f.sha256 + "\"}";
  }
  out += "\n]}\n";
  return out;
}

Result<FileManifest> make_file_manifest(const std::filesystem::path& version_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path root = fs::canonical(version_dir, ec);
  if (ec || !fs::is_directory(root, ec)) {
    return InvalidArgument(version_dir.string() + " is not a directory");
  }
  FileManifest manifest;
  // Directory symlinks are not followed (no loops); file symlinks are, while they stay inside.
  fs::recursive_directory_iterator it(root, ec);
  if (ec) return InvalidArgument("cannot list " + version_dir.string() + ": " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return InvalidArgument("cannot list " + version_dir.string() + ": " + ec.message());
    const fs::path& p = it->path();
    const std::string name = p.filename().string();
    if (name.starts_with(".")) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    // A symlink that leaves the version directory is not part of the version.
    const fs::path real = fs::canonical(p, ec);
    if (ec) return InvalidArgument(p.string() + " cannot be resolved");
    const auto rel_real = real.lexically_relative(root);
    if (rel_real.empty() || *rel_real.begin() == "..") {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!fs::is_regular_file(real, ec)) continue;
    const std::string rel = p.lexically_relative(root).generic_string();
    if (rel == kFileManifestName) continue;
    if (!is_safe_relative_path(rel)) return InvalidArgument("unsupported file name: " + rel);
    auto digest = sha256_file(real);
    if (!digest.ok()) return digest.status();
    const auto size = fs::file_size(real, ec);
    if (ec) return InvalidArgument("cannot read " + p.string());
    manifest.files.push_back({rel, size, std::move(digest).value()});
    if (manifest.files.size() > kMaxVersionFiles) {
      return InvalidArgument(version_dir.string() + " holds more than " +
                             std::to_string(kMaxVersionFiles) + " files");
    }
  }
  std::sort(manifest.files.begin(), manifest.files.end(),
            [](const ManifestFile& a, const ManifestFile& b) { return a.path < b.path; });
  return manifest;
}

}  // namespace forklift
