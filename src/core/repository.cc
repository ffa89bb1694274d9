#include "core/repository.h"

#include <algorithm>
#include <charconv>

#include "common/file_util.h"

namespace forklift {

std::filesystem::path repository_of(const std::filesystem::path& version_dir) {
  std::filesystem::path dir = version_dir;
  if (!dir.has_filename()) dir = dir.parent_path();  // "<repo>/m/1/" -> "<repo>/m/1"
  return dir.parent_path().parent_path();
}

bool is_valid_model_id(std::string_view id) {
  if (id.empty() || id.size() > 128 || id.front() == '.') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

std::int64_t parse_version(std::string_view text) {
  if (text.empty() || text.size() > 18 || text.front() == '0') return -1;
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 1) return -1;
  return v;
}

namespace {

// Whether `entry` is a directory to scan. A symlink counts when it resolves to a directory inside
// the repository; a broken or looping link, one that leaves the repository, or an entry that
// cannot be examined is reported in `skipped` and costs only itself.
bool usable_directory(const std::filesystem::path& root, const std::filesystem::path& entry,
                      std::vector<std::string>* skipped) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status link = fs::symlink_status(entry, ec);
  if (ec) {
    if (skipped) skipped->push_back(entry.string() + ": cannot be examined: " + ec.message());
    return false;
  }
  if (link.type() == fs::file_type::directory) return true;
  if (link.type() != fs::file_type::symlink) return false;  // a file: not a model or version
  auto real = real_path_within(root, entry);
  if (!real.ok()) {
    if (skipped) skipped->push_back(real.status().message());
    return false;
  }
  return fs::is_directory(*real, ec);
}

}  // namespace

Result<std::vector<ModelDirectory>> scan_repository(const std::filesystem::path& root,
                                                    std::vector<std::string>* skipped) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return NotFound("model repository '" + root.string() + "' is not a directory");
  }
  std::vector<ModelDirectory> models;
  // Each entry has its own error code: one that cannot be read must not fail the whole scan.
  fs::directory_iterator it(root, ec);
  if (ec) return Internal("cannot list '" + root.string() + "': " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return Internal("cannot list '" + root.string() + "': " + ec.message());
    const fs::path path = it->path();
    const std::string id = path.filename().string();
    if (!is_valid_model_id(id)) {
      std::error_code dir_ec;
      if (fs::is_directory(path, dir_ec) && skipped) {
        skipped->push_back(path.string() + ": not a valid model id");
      }
      continue;
    }
    if (!usable_directory(root, path, skipped)) continue;
    ModelDirectory model{id, path, {}};
    std::error_code list_ec;
    fs::directory_iterator vit(path, list_ec);
    for (; !list_ec && vit != fs::directory_iterator(); vit.increment(list_ec)) {
      const fs::path vpath = vit->path();
      const std::string name = vpath.filename().string();
      // Hidden entries are work in progress (a training job's staging directory,
      // training/staged_version.h) or an editor's: not versions, and not worth a report.
      if (!name.empty() && name.front() == '.') continue;
      const std::int64_t v = parse_version(name);
      if (v < 0) {
        std::error_code dir_ec;
        if (fs::is_directory(vpath, dir_ec) && skipped) {
          skipped->push_back(vpath.string() + ": not a version number");
        }
        continue;
      }
      if (!usable_directory(root, vpath, skipped)) continue;
      model.versions.push_back(v);
    }
    if (list_ec) {
      if (skipped) skipped->push_back(path.string() + ": cannot be listed: " + list_ec.message());
      continue;
    }
    std::sort(model.versions.begin(), model.versions.end());
    models.push_back(std::move(model));
  }
  std::sort(models.begin(), models.end(),
            [](const auto& a, const auto& b) { return a.model_id < b.model_id; });
  return models;
}

}  // namespace forklift
