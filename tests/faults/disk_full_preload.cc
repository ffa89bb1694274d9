// A full disk, on demand, for fault-injection tests: LD_PRELOAD this library into
// `forklift serve` and set
//   FORKLIFT_FAULT_DISK_DIR   the directory whose files sit on the "disk"
//   FORKLIFT_FAULT_DISK_FULL  a flag file (outside that directory)
// While the flag file exists, writes to regular files under the directory behave as the kernel
// does on a full disk: the flag file holds the bytes still free (empty means none); a write stores
// what fits and returns the short count, and the next write fails with ENOSPC. Removing the flag
// frees the disk again. Everything else passes straight through to libc.
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace {

using WriteFn = ssize_t (*)(int, const void*, size_t);
using WritevFn = ssize_t (*)(int, const struct iovec*, int);

WriteFn real_write() {
  static const auto fn = reinterpret_cast<WriteFn>(dlsym(RTLD_NEXT, "write"));
  return fn;
}

WritevFn real_writev() {
  static const auto fn = reinterpret_cast<WritevFn>(dlsym(RTLD_NEXT, "writev"));
  return fn;
}

// The bytes still free while the flag file exists, read from it each time it changes.
std::mutex mu;
long long free_bytes = 0;
struct timespec flag_mtime {};
bool flag_seen = false;

bool on_the_disk(int fd) {
  const char* dir = std::getenv("FORKLIFT_FAULT_DISK_DIR");
  if (dir == nullptr || *dir == '\0') return false;
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char path[PATH_MAX];
  const ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return false;
  const std::size_t dir_len = std::strlen(dir);
  return static_cast<std::size_t>(n) > dir_len && std::strncmp(path, dir, dir_len) == 0 &&
         path[dir_len] == '/';
}

// How many of `wanted` bytes may be written now; -1 means the disk is not full.
long long room_for(std::size_t wanted) {
  const char* flag = std::getenv("FORKLIFT_FAULT_DISK_FULL");
  struct stat st {};
  if (flag == nullptr || stat(flag, &st) != 0) {
    std::lock_guard lock(mu);
    flag_seen = false;
    return -1;
  }
  std::lock_guard lock(mu);
  if (!flag_seen || st.st_mtim.tv_sec != flag_mtime.tv_sec ||
      st.st_mtim.tv_nsec != flag_mtime.tv_nsec) {
    flag_seen = true;
    flag_mtime = st.st_mtim;
    free_bytes = 0;
    if (FILE* f = std::fopen(flag, "r")) {
      if (std::fscanf(f, "%lld", &free_bytes) != 1) free_bytes = 0;
      std::fclose(f);
    }
  }
  const long long allowed =
      free_bytes < static_cast<long long>(wanted) ? free_bytes : static_cast<long long>(wanted);
  free_bytes -= allowed;
  return allowed;
}

}  // namespace

extern "C" ssize_t write(int fd, const void* buf, size_t count) {
  if (count > 0 && on_the_disk(fd)) {
    const long long room = room_for(count);
    if (room == 0) {
      errno = ENOSPC;
      return -1;
    }
    if (room > 0) count = static_cast<size_t>(room);
  }
  return real_write()(fd, buf, count);
}

extern "C" ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  std::size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
  if (total > 0 && on_the_disk(fd)) {
    const long long room = room_for(total);
    if (room == 0) {
      errno = ENOSPC;
      return -1;
    }
    if (room > 0) {
      // Store what fits, from the first buffers on, as one write.
      std::string joined;
      for (int i = 0; i < iovcnt && joined.size() < static_cast<std::size_t>(room); ++i) {
        joined.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      }
      joined.resize(static_cast<std::size_t>(room));
      return real_write()(fd, joined.data(), joined.size());
    }
  }
  return real_writev()(fd, iov, iovcnt);
}
