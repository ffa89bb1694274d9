#include "observability/repository_stats.h"

#include "observability/metrics.h"

namespace forklift {

void RepositoryStats::set_rejected(const std::string& path, const std::string& reason) {
  std::lock_guard lock(mu_);
  rejected_[path] = reason;
}

void RepositoryStats::clear_rejected(const std::string& path) {
  std::lock_guard lock(mu_);
  rejected_.erase(path);
}

std::map<std::string, std::string> RepositoryStats::rejected() const {
  std::lock_guard lock(mu_);
  return rejected_;
}

void RepositoryStats::render(std::string& out) const {
  auto line = [&out](std::string_view name, std::string_view labels, std::uint64_t value) {
    append_sample(out, name, labels, value);
  };
  out +=
      "# HELP forklift_repository_syncs_total Polls of the remote model repository, by result "
      "(failed: its listing could not be read; what was mirrored keeps serving).\n"
      "# TYPE forklift_repository_syncs_total counter\n";
  line("forklift_repository_syncs_total", "{result=\"ok\"}", syncs_ok.load());
  line("forklift_repository_syncs_total", "{result=\"failed\"}", syncs_failed.load());
  out +=
      "# HELP forklift_repository_downloaded_bytes_total Bytes of model files downloaded.\n"
      "# TYPE forklift_repository_downloaded_bytes_total counter\n";
  line("forklift_repository_downloaded_bytes_total", "", downloaded_bytes.load());
  out +=
      "# HELP forklift_repository_files_total Files of mirrored versions, by where they came "
      "from (download, or the local content-addressed cache).\n"
      "# TYPE forklift_repository_files_total counter\n";
  line("forklift_repository_files_total", "{source=\"download\"}", files_downloaded.load());
  line("forklift_repository_files_total", "{source=\"cache\"}", files_from_cache.load());
  out +=
      "# HELP forklift_repository_retries_total Requests to the remote repository tried again "
      "after a transient failure.\n"
      "# TYPE forklift_repository_retries_total counter\n";
  line("forklift_repository_retries_total", "", retries.load());
  out +=
      "# HELP forklift_repository_versions Versions of the remote repository, by state.\n"
      "# TYPE forklift_repository_versions gauge\n";
  line("forklift_repository_versions", "{state=\"mirrored\"}", versions_mirrored.load());
  const auto rejected_now = rejected();
  line("forklift_repository_versions", "{state=\"rejected\"}", rejected_now.size());
  out +=
      "# HELP forklift_repository_last_sync_timestamp_seconds When the remote repository was "
      "last read whole (Unix time).\n"
      "# TYPE forklift_repository_last_sync_timestamp_seconds gauge\n"
      "forklift_repository_last_sync_timestamp_seconds " +
      std::to_string(static_cast<std::int64_t>(last_success_unix.load())) + "\n";
  if (!rejected_now.empty()) {
    out +=
        "# HELP forklift_repository_version_rejected A remote version not mirrored (incomplete, "
        "a digest mismatch, a bad manifest); the log says why.\n"
        "# TYPE forklift_repository_version_rejected gauge\n";
    for (const auto& [path, reason] : rejected_now) {
      const auto slash = path.find('/');
      out += "forklift_repository_version_rejected{model_id=\"" +
             prometheus_label(path.substr(0, slash)) + "\",version=\"" +
             prometheus_label(path.substr(slash + 1)) + "\"} 1\n";
    }
  }
}

}  // namespace forklift
