// Whether a version's files changed: a rejected version is tried again once they do (by content:
// touching a file is not a change; copying new bytes in with their old mtime is).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace forklift {

// Names, sizes, inodes, mtimes and ctimes of the regular files under `version_dir` (symlinks
// followed while they stay inside the repository; files outside it are not part of a version;
// at most 10,000 entries, so a change past them is not seen: `forklift reload` is). Cheap; any
// write to a file changes its ctime, so an equal signature means equal files.
std::string version_files_signature(const std::filesystem::path& version_dir);

// A 64-bit hash of the same files' names and contents: the first 256 MiB of content; a file past
// that budget counts by its stat data.
std::uint64_t version_files_content(const std::filesystem::path& version_dir);

// The same files' total size in bytes.
std::uint64_t version_files_size(const std::filesystem::path& version_dir);

}  // namespace forklift
