// A version's file manifest, `forklift-files.json`: every file of the version with its size and
// SHA-256 digest. In an object-storage repository a version exists only once its file manifest
// does (`forklift push` writes it last), and is complete only when every listed file has arrived
// with that size and digest. Format (docs/reference/repository-urls.md):
//   {"format": 1, "files": [{"path": "model.yaml", "size": 412, "sha256": "9f86d0…"}, …]}
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/status.h"

namespace forklift {

inline constexpr std::string_view kFileManifestName = "forklift-files.json";
inline constexpr std::size_t kMaxFileManifestBytes = 1 << 20;
inline constexpr std::size_t kMaxVersionFiles = 10'000;

struct ManifestFile {
  std::string path;  // relative, '/'-separated, no '.', '..' or empty parts
  std::uint64_t size = 0;
  std::string sha256;  // 64 lower-case hex characters

  bool operator==(const ManifestFile&) const = default;
};

struct FileManifest {
  std::vector<ManifestFile> files;  // sorted by path, paths unique
  std::uint64_t total_bytes() const;
};

// Parses and checks a file manifest from an untrusted source: at most kMaxFileManifestBytes and
// kMaxVersionFiles, every path relative and inside the version, sizes under `max_version_bytes`
// in total (overflow-checked), digests well-formed. Errors never quote the text.
Result<FileManifest> parse_file_manifest(std::string_view json, std::uint64_t max_version_bytes);

std::string file_manifest_json(const FileManifest& manifest);

// The manifest of a local version directory: its regular files (symlinks to files followed only
// while they stay inside the directory; symlinks to directories not followed), hidden names
// ('.'-prefixed) and the manifest itself left out.
Result<FileManifest> make_file_manifest(const std::filesystem::path& version_dir);

// Whether `path` is a relative '/'-separated path with no empty, '.' or '..' part, no '\\' and no
// control character, of at most 1,024 bytes.
bool is_safe_relative_path(std::string_view path);

}  // namespace forklift
