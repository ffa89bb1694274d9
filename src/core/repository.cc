#include "core/repository.h"

#include <algorithm>
#include <charconv>

namespace forklift {

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

Result<std::vector<ModelDirectory>> scan_repository(const std::filesystem::path& root,
                                                    std::vector<std::string>* skipped) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return NotFound("model repository '" + root.string() + "' is not a directory");
  }
  std::vector<ModelDirectory> models;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (!entry.is_directory(ec)) continue;
    const std::string id = entry.path().filename().string();
    if (!is_valid_model_id(id)) {
      if (skipped) skipped->push_back(entry.path().string() + ": not a valid model id");
      continue;
    }
    ModelDirectory model{id, entry.path(), {}};
    for (const auto& vdir : fs::directory_iterator(entry.path(), ec)) {
      if (!vdir.is_directory(ec)) continue;
      const std::int64_t v = parse_version(vdir.path().filename().string());
      if (v < 0) {
        if (skipped) skipped->push_back(vdir.path().string() + ": not a version number");
        continue;
      }
      model.versions.push_back(v);
    }
    std::sort(model.versions.begin(), model.versions.end());
    models.push_back(std::move(model));
  }
  if (ec) return Internal("cannot list '" + root.string() + "': " + ec.message());
  std::sort(models.begin(), models.end(),
            [](const auto& a, const auto& b) { return a.model_id < b.model_id; });
  return models;
}

}  // namespace forklift
