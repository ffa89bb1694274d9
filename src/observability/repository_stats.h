// What the object-storage repository mirror has done, for /metrics.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace forklift {

struct RepositoryStats {
  std::atomic<std::uint64_t> syncs_ok{0};
  std::atomic<std::uint64_t> syncs_failed{0};  // the listing could not be read
  std::atomic<std::uint64_t> downloaded_bytes{0};
  std::atomic<std::uint64_t> files_downloaded{0};
  std::atomic<std::uint64_t> files_from_cache{0};  // a file whose digest the cache already held
  std::atomic<std::uint64_t> retries{0};
  std::atomic<std::int64_t> versions_mirrored{0};
  std::atomic<double> last_success_unix{0};

  // "<model>/<version>" -> why it was rejected; cleared when it is mirrored or leaves the store.
  void set_rejected(const std::string& path, const std::string& reason);
  void clear_rejected(const std::string& path);
  std::map<std::string, std::string> rejected() const;

  // Appends the forklift_repository_* families in the Prometheus text format.
  void render(std::string& out) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> rejected_;
};

}  // namespace forklift
