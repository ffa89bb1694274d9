#pragma once

#include <filesystem>
#include <string_view>

#include "forklift/status.h"

namespace forklift {

// Replaces `path` with `content` so that a reader (or a crash) sees either the old file or the
// new one whole: write a temporary file beside it, fsync it, rename it over, fsync the directory.
Status write_file_atomically(const std::filesystem::path& path, std::string_view content);

}  // namespace forklift
