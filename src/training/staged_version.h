// A new version written where no reader can see it, then published in one step.
//
// The files go to a hidden directory inside the model's directory (<model>/.train-<job id>; the
// repository scan skips names that start with '.'), each written and fsynced; the job holds an
// flock on it while it lives, which the kernel drops when the process dies. publish()
// renames the directory to the next free version number with renameat2(RENAME_NOREPLACE), so a
// reader (the server's repository poll) sees no version or the whole one, and two jobs can never
// take the same number. A job that fails, is cancelled or is killed leaves no version: the
// destructor removes the directory, and a killed process's leftovers are removed by the next job
// (remove_abandoned_staging).
#pragma once

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>

#include "common/file_util.h"
#include "forklift/status.h"

namespace forklift::training {

class StagedVersion {
 public:
  // Creates the staging directory in `model_dir` for job `job_id` ([A-Za-z0-9_-], <= 64).
  static Result<StagedVersion> create(const std::filesystem::path& model_dir,
                                      const std::string& job_id);
  StagedVersion(StagedVersion&& other) noexcept;
  StagedVersion& operator=(StagedVersion&&) = delete;
  StagedVersion(const StagedVersion&) = delete;
  ~StagedVersion();  // removes the directory unless it was published

  const std::filesystem::path& dir() const { return dir_; }
  // Writes `name` (a plain file name) with `content`, fsynced.
  Status write(const std::string& name, std::string_view content) const;
  // fsyncs a file something else (a trainer) wrote into dir().
  Status sync(const std::string& name) const;
  // Copies the top-level regular files of `version_dir` (inside `root`, real path) but those
  // named in `skip` and hidden ones; links out of `root` and directories are left out. Fails
  // beyond `max_bytes` in all.
  Status copy_files_from(const std::filesystem::path& version_dir,
                         const std::filesystem::path& root, const std::set<std::string>& skip,
                         std::uint64_t max_bytes) const;
  // Renames the directory to the lowest version number above every existing one; returns it.
  Result<std::int64_t> publish();

 private:
  StagedVersion(std::filesystem::path model_dir, std::filesystem::path dir, UniqueFd lock)
      : model_dir_(std::move(model_dir)), dir_(std::move(dir)), lock_(std::move(lock)) {}
  std::filesystem::path model_dir_;
  std::filesystem::path dir_;
  UniqueFd lock_;  // the staging directory, flocked while this job lives
  bool published_ = false;
};

// Removes staging directories in `model_dir` that no job holds (one killed mid-way); returns how
// many. Directories of running jobs, in this process or another, are left alone.
std::size_t remove_abandoned_staging(const std::filesystem::path& model_dir);

// The highest version number in `model_dir`, 0 when there is none.
std::int64_t newest_version(const std::filesystem::path& model_dir);

}  // namespace forklift::training
