#include "core/version_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

namespace forklift {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxEntries = 10'000;
constexpr std::uint64_t kMaxHashedBytes = std::uint64_t{2} << 30;

// The version's files in a stable order (directory iteration order is not).
std::vector<fs::path> files_under(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (std::size_t n = 0; !ec && it != fs::recursive_directory_iterator() && n < kMaxEntries;
       it.increment(ec), ++n) {
    files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
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
  std::uint64_t tail = n - i;
  std::memcpy(&tail, data + i, n - i);  // the low bytes; the count stays in the high ones
  return mix(h, tail ^ (std::uint64_t{n} << 56));
}

}  // namespace

std::string version_files_signature(const fs::path& version_dir) {
  std::string out;
  for (const fs::path& file : files_under(version_dir)) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    out += file.lexically_relative(version_dir).string();
    out += ':' + std::to_string(st.st_size) + ':' + std::to_string(st.st_ino) + ':' +
           std::to_string(st.st_mtim.tv_sec) + '.' + std::to_string(st.st_mtim.tv_nsec) + ':' +
           std::to_string(st.st_ctim.tv_sec) + '.' + std::to_string(st.st_ctim.tv_nsec) + '\n';
  }
  return out;
}

std::uint64_t version_files_content(const fs::path& version_dir) {
  std::uint64_t h = 0x6A09E667F3BCC908ull;
  std::array<char, 1 << 16> buffer;
  for (const fs::path& file : files_under(version_dir)) {
    const std::string name = file.lexically_relative(version_dir).string();
    // O_NONBLOCK: a FIFO planted among the files must not stall the loader.
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      h = mix_bytes(h, name.data(), name.size());
      continue;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      continue;
    }
    h = mix_bytes(h, name.data(), name.size());
    std::uint64_t total = 0;
    for (;;) {
      const ssize_t n = ::read(fd, buffer.data(), buffer.size());
      if (n <= 0) break;
      h = mix_bytes(h, buffer.data(), static_cast<std::size_t>(n));
      total += static_cast<std::uint64_t>(n);
      if (total >= kMaxHashedBytes) break;
    }
    ::close(fd);
  }
  return h;
}

}  // namespace forklift
