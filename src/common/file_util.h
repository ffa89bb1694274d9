#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <string_view>
#include <utility>

#include "forklift/status.h"

namespace forklift {

// Owns a file descriptor and closes it when it goes out of scope.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Writes all of `content` (retrying short writes and EINTR); on failure the error names `what`.
// Part of `content` may have been written when it fails (a full disk stores what fits).
Status write_all(int fd, std::string_view content, std::string_view what);

// Replaces `path` with `content` so that a reader (or a crash) sees either the old file or the
// new one whole: write a temporary file beside it, fsync it, rename it over, fsync the directory.
// On any failure (a full disk included) the old file is untouched and the temporary removed.
Status write_file_atomically(const std::filesystem::path& path, std::string_view content);

// The real path of `path` (every symlink resolved) when it exists and lies inside the real path
// of `root`; otherwise an error that names `path` and why (missing, a broken or looping link,
// outside the root), never its content. Containment is checked on real paths, not on text.
Result<std::filesystem::path> real_path_within(const std::filesystem::path& root,
                                               const std::filesystem::path& path);

// A regular file opened for reading, with its real path and size.
struct ContainedFile {
  UniqueFd fd;
  std::filesystem::path real_path;
  std::uintmax_t size = 0;
};

// Opens `path` for reading if its real path lies inside `root` and it is a regular file of at
// most `max_bytes`; a directory, FIFO, socket or device in its place is refused (it is opened
// with O_NONBLOCK, so a FIFO cannot block the caller). Errors name `path`, never its content.
Result<ContainedFile> open_regular_within(
    const std::filesystem::path& root, const std::filesystem::path& path,
    std::uintmax_t max_bytes = std::numeric_limits<std::uintmax_t>::max());

// Reads up to `size` bytes from `fd` (retrying EINTR and short reads): a ContainedFile's content.
// A file that shrank meanwhile gives what there was.
std::string read_up_to(int fd, std::size_t size);

// A JSON-lines file whose writer died mid-write (kill -9, a full disk) may end in part of a line:
// cuts the file back to its last '\n'. Returns the bytes removed (0 when the file was whole).
Result<std::uint64_t> cut_torn_last_line(const std::filesystem::path& path);

}  // namespace forklift
