#include "common/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>

namespace forklift {
namespace {

Status errno_status(const std::string& what) {
  return Internal(what + ": " + std::strerror(errno));
}

}  // namespace

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Status write_all(int fd, std::string_view content, std::string_view what) {
  while (!content.empty()) {
    const ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("cannot write " + std::string(what));
    }
    content.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::Ok();
}

Status write_file_atomically(const std::filesystem::path& path, std::string_view content) {
  // A fresh name made with O_EXCL (mkostemp): a fixed one could be a symlink planted by whoever
  // can write the directory (the model repository's publishers), and opening it would write
  // through the link to any file this process may write.
  std::string tmp_name = path.string() + ".tmp.XXXXXX";
  UniqueFd f{::mkostemp(tmp_name.data(), O_CLOEXEC)};
  if (!f.valid()) return errno_status("cannot create a temporary file beside " + path.string());
  const std::filesystem::path tmp = tmp_name;
  {
    if (Status s = write_all(f.get(), content, tmp.string()); !s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    if (::fsync(f.get()) != 0) {
      Status s = errno_status("cannot fsync " + tmp.string());
      ::unlink(tmp.c_str());
      return s;
    }
    f.reset();
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = errno_status("cannot rename " + tmp.string() + " to " + path.string());
    ::unlink(tmp.c_str());
    return s;
  }
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  UniqueFd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.valid()) ::fsync(d.get());
  return Status::Ok();
}

Result<std::filesystem::path> real_path_within(const std::filesystem::path& root,
                                               const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path real_root = fs::canonical(root, ec);
  if (ec) return NotFound("'" + root.string() + "' cannot be resolved: " + ec.message());
  const fs::path real = fs::canonical(path, ec);
  if (ec) {
    std::error_code lec;
    const bool is_link = fs::is_symlink(fs::symlink_status(path, lec));
    return NotFound("'" + path.string() + "' " +
                    (is_link ? "is a symlink that cannot be resolved (broken or a loop): "
                             : "cannot be resolved: ") +
                    ec.message());
  }
  // Inside: the root's components are a prefix of the path's.
  auto r = real_root.begin();
  auto p = real.begin();
  for (; r != real_root.end(); ++r, ++p) {
    if (p == real.end() || *p != *r) {
      // Where it leads is not said: an error may reach someone who may not read that path.
      return FailedPrecondition("'" + path.string() + "' leads outside '" + real_root.string() +
                                "'");
    }
  }
  return real;
}

Result<ContainedFile> open_regular_within(const std::filesystem::path& root,
                                          const std::filesystem::path& path,
                                          std::uintmax_t max_bytes) {
  auto real = real_path_within(root, path);
  if (!real.ok()) return real.status();
  ContainedFile file;
  file.fd.reset(::open(real->c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW));
  if (!file.fd.valid()) return errno_status("cannot open '" + path.string() + "'");
  struct stat st {};
  if (::fstat(file.fd.get(), &st) != 0) return errno_status("cannot stat '" + path.string() + "'");
  if (!S_ISREG(st.st_mode)) {
    return FailedPrecondition("'" + path.string() + "' is not a regular file");
  }
  file.size = static_cast<std::uintmax_t>(st.st_size);
  if (file.size > max_bytes) {
    return FailedPrecondition("'" + path.string() + "' is larger than the limit of " +
                              std::to_string(max_bytes) + " bytes");
  }
  // Back to blocking reads for the caller.
  const int flags = ::fcntl(file.fd.get(), F_GETFL);
  if (flags >= 0) ::fcntl(file.fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  file.real_path = std::move(real).value();
  return file;
}

Result<std::uint64_t> cut_torn_last_line(const std::filesystem::path& path) {
  UniqueFd f{::open(path.c_str(), O_RDWR | O_CLOEXEC)};
  if (!f.valid()) return errno_status("cannot open " + path.string());
  struct stat st {};
  if (::fstat(f.get(), &st) != 0) return errno_status("cannot stat " + path.string());
  const auto size = static_cast<std::uint64_t>(st.st_size);
  // Read backwards a block at a time until the last newline.
  std::array<char, 64 * 1024> block{};
  std::uint64_t end = size;
  while (end > 0) {
    const std::uint64_t start = end > block.size() ? end - block.size() : 0;
    const auto want = static_cast<std::size_t>(end - start);
    const ssize_t n = ::pread(f.get(), block.data(), want, static_cast<off_t>(start));
    if (n != static_cast<ssize_t>(want)) return errno_status("cannot read " + path.string());
    for (std::size_t i = want; i > 0; --i) {
      if (block[i - 1] == '\n') {
        const std::uint64_t keep = start + i;
        if (keep == size) return std::uint64_t{0};
        if (::ftruncate(f.get(), static_cast<off_t>(keep)) != 0) {
          return errno_status("cannot truncate " + path.string());
        }
        return size - keep;
      }
    }
    end = start;
  }
  // No newline at all: the whole file is one torn line.
  if (size > 0 && ::ftruncate(f.get(), 0) != 0) {
    return errno_status("cannot truncate " + path.string());
  }
  return size;
}

std::string read_up_to(int fd, std::size_t size) {
  std::string text(size, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  return text;
}

}  // namespace forklift
