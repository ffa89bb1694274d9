#include "common/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace forklift {
namespace {

// Closes a file descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status errno_status(const std::string& what) {
  return Internal(what + ": " + std::strerror(errno));
}

}  // namespace

Status write_file_atomically(const std::filesystem::path& path, std::string_view content) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
    if (f.fd < 0) return errno_status("cannot create " + tmp.string());
    std::size_t written = 0;
    while (written < content.size()) {
      const ssize_t n = ::write(f.fd, content.data() + written, content.size() - written);
      if (n < 0) {
        if (errno == EINTR) continue;
        Status s = errno_status("cannot write " + tmp.string());
        ::unlink(tmp.c_str());
        return s;
      }
      written += static_cast<std::size_t>(n);
    }
    if (::fsync(f.fd) != 0) {
      Status s = errno_status("cannot fsync " + tmp.string());
      ::unlink(tmp.c_str());
      return s;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = errno_status("cannot rename " + tmp.string() + " to " + path.string());
    ::unlink(tmp.c_str());
    return s;
  }
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd >= 0) ::fsync(d.fd);
  return Status::Ok();
}

}  // namespace forklift
