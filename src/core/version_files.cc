#include "core/version_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "common/file_util.h"
#include "core/repository.h"

namespace forklift {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxEntries = 10'000;
// Content hashed per version; files beyond it count by name, size and times only. Hashing runs
// under the registry's lock (a rejected version, once per change of its files): bounded so that
// a version with huge files cannot hold up control-plane changes for long.
constexpr std::uint64_t kMaxHashedBytes = std::uint64_t{256} << 20;

struct VersionFile {
  std::string name;  // relative to the version directory
  fs::path real;     // resolved, inside the repository
  struct stat st {};
};

// The version's regular files, resolved, in a stable order. Directory symlinks are followed when
// they stay inside the repository (the loader follows them too); anything that resolves outside
// it, or is not a regular file, is left out: it cannot be part of a version that loads.
std::vector<VersionFile> files_of(const fs::path& version_dir) {
  const fs::path repository = repository_of(version_dir);
  std::vector<VersionFile> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(version_dir,
                                      fs::directory_options::skip_permission_denied |
                                          fs::directory_options::follow_directory_symlink,
                                      ec);
  for (std::size_t n = 0; !ec && it != fs::recursive_directory_iterator() && n < kMaxEntries;
       it.increment(ec), ++n) {
    auto real = real_path_within(repository, it->path());
    if (!real.ok()) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      ec.clear();
      continue;
    }
    VersionFile f;
    if (::stat(real->c_str(), &f.st) != 0 || !S_ISREG(f.st.st_mode)) continue;
    f.name = it->path().lexically_relative(version_dir).string();
    f.real = std::move(real).value();
    files.push_back(std::move(f));
  }
  std::sort(files.begin(), files.end(),
            [](const VersionFile& a, const VersionFile& b) { return a.name < b.name; });
  return files;
}

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

std::uint64_t mix_bytes(std::uint64_t h, const char* data, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, data + i, 8);
    h = mix(h, word);
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, data + i, n - i);
  return mix(h, tail ^ (std::uint64_t{n} << 56));
}

std::string stat_line(const VersionFile& f) {
  const struct stat& st = f.st;
  return f.name + ':' + std::to_string(st.st_size) + ':' + std::to_string(st.st_ino) + ':' +
         std::to_string(st.st_mtim.tv_sec) + '.' + std::to_string(st.st_mtim.tv_nsec) + ':' +
         std::to_string(st.st_ctim.tv_sec) + '.' + std::to_string(st.st_ctim.tv_nsec) + '\n';
}

}  // namespace

std::string version_files_signature(const fs::path& version_dir) {
  std::string out;
  for (const VersionFile& f : files_of(version_dir)) out += stat_line(f);
  return out;
}

std::uint64_t version_files_content(const fs::path& version_dir) {
  std::uint64_t h = 0x6A09E667F3BCC908ull;
  std::uint64_t budget = kMaxHashedBytes;
  std::array<char, 1 << 16> buffer;
  for (const VersionFile& f : files_of(version_dir)) {
    h = mix_bytes(h, f.name.data(), f.name.size());
    if (static_cast<std::uint64_t>(f.st.st_size) > budget) {
      const std::string line = stat_line(f);  // past the budget: its stat data stands for it
      h = mix_bytes(h, line.data(), line.size());
      continue;
    }
    // O_NONBLOCK: a file swapped for a FIFO since it was listed must not stall the loader.
    const int fd = ::open(f.real.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) continue;
    for (;;) {
      const ssize_t n = ::read(fd, buffer.data(), buffer.size());
      if (n <= 0) break;
      h = mix_bytes(h, buffer.data(), static_cast<std::size_t>(n));
      budget -= std::min<std::uint64_t>(budget, static_cast<std::uint64_t>(n));
      if (budget == 0) break;
    }
    ::close(fd);
  }
  return h;
}

}  // namespace forklift

namespace forklift {

std::uint64_t version_files_size(const fs::path& version_dir) {
  std::uint64_t total = 0;
  for (const VersionFile& f : files_of(version_dir))
    total += static_cast<std::uint64_t>(f.st.st_size);
  return total;
}

}  // namespace forklift
