// The model repository on disk: <repository>/<model id>/<version>/model.yaml.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/status.h"

namespace forklift {

struct ModelDirectory {
  std::string model_id;
  std::filesystem::path path;
  std::vector<std::int64_t> versions;  // ascending
};

// Lists model ids and their version directories. Names that are not valid model ids or versions,
// symlinks that are broken, loop or resolve outside the repository, and directories that cannot
// be listed are skipped (and reported in `skipped`): a bad entry costs only itself.
Result<std::vector<ModelDirectory>> scan_repository(const std::filesystem::path& root,
                                                    std::vector<std::string>* skipped = nullptr);

// The repository a version directory (<repository>/<model id>/<version>, with or without a
// trailing separator) belongs to: what every file of that version must resolve inside.
std::filesystem::path repository_of(const std::filesystem::path& version_dir);

// A model id: 1-128 of [A-Za-z0-9_.-], not starting with '.' (so no path can leave the repository).
bool is_valid_model_id(std::string_view id);
// A version: a positive decimal integer without sign or leading zeros; -1 when `text` is not one.
std::int64_t parse_version(std::string_view text);

}  // namespace forklift
