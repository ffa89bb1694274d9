#include "training/staged_version.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/file_util.h"
#include "core/repository.h"
#include "training/job_id.h"

namespace forklift::training {
namespace {

constexpr std::string_view kPrefix = ".train-";
constexpr std::string_view kMakingPrefix = ".train.making-";  // before its lock is taken
// Versions a publish tries past the newest before it gives up (another writer keeps winning).
constexpr int kPublishAttempts = 64;

Status fsync_path(const std::filesystem::path& path, int flags) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (!fd.valid()) return Internal("cannot open " + path.string() + ": " + std::strerror(errno));
  if (::fsync(fd.get()) != 0) {
    return Internal("cannot sync " + path.string() + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

Result<StagedVersion> StagedVersion::create(const std::filesystem::path& model_dir,
                                            const std::string& job_id) {
  if (!is_valid_job_id(job_id)) return InvalidArgument("a job id is 1-64 of [A-Za-z0-9_-]");
  // Made under another name and locked first, then renamed: a directory with the staging
  // prefix is always locked while its job lives, so another job's cleanup never takes one that
  // is being made.
  const std::filesystem::path making = model_dir / (std::string(kMakingPrefix) + job_id);
  const std::filesystem::path dir = model_dir / (std::string(kPrefix) + job_id);
  if (::mkdir(making.c_str(), 0755) != 0) {
    return Internal("cannot create " + making.string() + ": " + std::strerror(errno));
  }
  UniqueFd lock(::open(making.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!lock.valid() || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0 ||
      ::renameat2(AT_FDCWD, making.c_str(), AT_FDCWD, dir.c_str(), RENAME_NOREPLACE) != 0) {
    const std::string why = std::strerror(errno);
    std::error_code ec;
    std::filesystem::remove_all(making, ec);
    return Internal("cannot create " + dir.string() + ": " + why);
  }
  return StagedVersion(model_dir, dir, std::move(lock));
}

StagedVersion::StagedVersion(StagedVersion&& other) noexcept
    : model_dir_(std::move(other.model_dir_)),
      dir_(std::move(other.dir_)),
      lock_(std::move(other.lock_)),
      published_(other.published_) {
  other.published_ = true;  // the moved-from object owns nothing
}

StagedVersion::~StagedVersion() {
  if (published_ || dir_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Status StagedVersion::write(const std::string& name, std::string_view content) const {
  const std::filesystem::path file = dir_ / name;
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return Internal("cannot create " + file.string() + ": " + std::strerror(errno));
  if (Status s = write_all(fd.get(), content, file.string()); !s.ok()) return s;
  if (::fsync(fd.get()) != 0) {
    return Internal("cannot sync " + file.string() + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status StagedVersion::sync(const std::string& name) const {
  return fsync_path(dir_ / name, O_RDONLY);
}

Status StagedVersion::copy_files_from(const std::filesystem::path& version_dir,
                                      const std::filesystem::path& root,
                                      const std::set<std::string>& skip,
                                      std::uint64_t max_bytes) const {
  std::uint64_t copied = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(version_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (skip.count(name) || name.front() == '.') continue;
    auto file = open_regular_within(root, it->path(), max_bytes);
    if (!file.ok()) continue;  // a directory, a link out of the root: not copied
    copied += file->size;
    if (copied > max_bytes) {
      return FailedPrecondition(version_dir.string() + ": its files pass " +
                                std::to_string(max_bytes >> 20) + " MiB");
    }
    const std::string content = read_up_to(file->fd.get(), static_cast<std::size_t>(file->size));
    if (Status s = write(name, content); !s.ok()) return s;
  }
  return Status::Ok();
}

Result<std::int64_t> StagedVersion::publish() {
  if (Status s = fsync_path(dir_, O_RDONLY | O_DIRECTORY); !s.ok()) return s;
  std::int64_t version = newest_version(model_dir_) + 1;
  for (int attempt = 0; attempt < kPublishAttempts; ++attempt, ++version) {
    // A number the repository scan would not read as a version is never published.
    if (parse_version(std::to_string(version)) != version) {
      return FailedPrecondition("no version number is left above the newest in " +
                                model_dir_.string());
    }
    const std::filesystem::path target = model_dir_ / std::to_string(version);
    if (::renameat2(AT_FDCWD, dir_.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) == 0) {
      published_ = true;
      dir_ = target;
      // The rename itself is durable once the model's directory is.
      if (Status s = fsync_path(model_dir_, O_RDONLY | O_DIRECTORY); !s.ok()) return s;
      return version;
    }
    if (errno != EEXIST && errno != ENOTEMPTY) {
      return Internal("cannot publish " + dir_.string() + " as version " + std::to_string(version) +
                      ": " + std::strerror(errno));
    }
  }
  return Internal("cannot publish " + dir_.string() + ": every version number tried was taken");
}

std::size_t remove_abandoned_staging(const std::filesystem::path& model_dir) {
  std::size_t removed = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(model_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const bool staging = name.rfind(kPrefix, 0) == 0;
    const bool making = name.rfind(kMakingPrefix, 0) == 0;
    if (!staging && !making) continue;
    // One still being made (not locked yet) is left for an hour: its job is microseconds from
    // locking it, or died in between.
    struct stat st {};
    if (making &&
        (::lstat(it->path().c_str(), &st) != 0 || std::time(nullptr) - st.st_mtime < 3600)) {
      continue;
    }

    // O_NOFOLLOW: a link planted under the prefix is not followed out of the model's directory.
    UniqueFd probe(::open(it->path().c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!probe.valid() || ::flock(probe.get(), LOCK_EX | LOCK_NB) != 0) continue;  // a live job
    std::error_code remove_ec;
    std::filesystem::remove_all(it->path(), remove_ec);
    if (!remove_ec) ++removed;
  }
  return removed;
}

std::int64_t newest_version(const std::filesystem::path& model_dir) {
  std::int64_t newest = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(model_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    newest = std::max(newest, parse_version(it->path().filename().string()));
  }
  return newest;
}

}  // namespace forklift::training
