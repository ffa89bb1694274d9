#include "store/content_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <system_error>
#include <vector>

#include "common/sha256.h"

namespace forklift {

namespace fs = std::filesystem;

namespace {

// This host's name without dots (temporary names are split at dots) or slashes.
std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "host";
  std::string out;
  for (const char* p = buf; *p != '\0'; ++p) {
    if (*p != '.' && *p != '/') out.push_back(*p);
  }
  return out.empty() ? "host" : out;
}

}  // namespace

Result<ContentCache> ContentCache::open(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir / "sha256", ec);
  if (!ec) fs::create_directories(dir / "tmp", ec);
  if (ec)
    return FailedPrecondition("cannot create the cache " + dir.string() + ": " + ec.message());
  // Leftovers of an interrupted write: "<digest>.<host>.<pid>.<n>". Only those of a process of
  // this host that is gone: servers on other hosts (pods sharing a volume) or running here may
  // be writing theirs now. Anything older than a day goes whoever wrote it.
  const std::string host = host_name();
  for (const auto& e : fs::directory_iterator(dir / "tmp", ec)) {
    const std::string name = e.path().filename().string();
    std::vector<std::string> parts;
    for (std::size_t start = 0, dot = 0; start <= name.size(); start = dot + 1) {
      dot = name.find('.', start);
      if (dot == std::string::npos) dot = name.size();
      parts.push_back(name.substr(start, dot - start));
    }
    std::error_code time_ec;
    const auto age = fs::file_time_type::clock::now() - fs::last_write_time(e.path(), time_ec);
    const bool ours_and_dead =
        parts.size() == 4 && parts[1] == host && !fs::exists("/proc/" + parts[2], time_ec);
    if (ours_and_dead || time_ec || age > std::chrono::hours(24)) fs::remove_all(e.path(), ec);
  }
  return ContentCache(dir);
}

fs::path ContentCache::blob_path(const std::string& sha256) const {
  return dir_ / "sha256" / sha256.substr(0, 2) / sha256;
}

bool ContentCache::has(const ManifestFile& file) const {
  std::error_code ec;
  const auto size = fs::file_size(blob_path(file.sha256), ec);
  return !ec && size == file.size;
}

Status ContentCache::add(const ManifestFile& file,
                         const std::function<Status(const ObjectSink&)>& fill) {
  static std::atomic<std::uint64_t> counter{0};
  const fs::path tmp = dir_ / "tmp" /
                       (file.sha256 + "." + host_name() + "." + std::to_string(::getpid()) + "." +
                        std::to_string(++counter));
  struct Cleanup {
    const fs::path& p;
    bool keep = false;
    ~Cleanup() {
      std::error_code ec;
      if (!keep) fs::remove(p, ec);
    }
  } cleanup{tmp};
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::fopen(tmp.c_str(), "wb"), std::fclose);
  if (!out) return Unavailable("cannot write to the cache " + dir_.string());
  Sha256 digest;
  std::uint64_t written = 0;
  Status filled = fill([&](std::string_view piece) -> Status {
    written += piece.size();
    if (written > file.size) {
      return FailedPrecondition(file.path + " is larger than the " + std::to_string(file.size) +
                                " bytes its manifest says");
    }
    digest.update(piece);
    if (std::fwrite(piece.data(), 1, piece.size(), out.get()) != piece.size()) {
      return Unavailable("cannot write to the cache " + dir_.string() + " (disk full?)");
    }
    return Status::Ok();
  });
  if (!filled.ok()) return filled;
  if (written != file.size) {
    return FailedPrecondition(file.path + " has " + std::to_string(written) +
                              " bytes where its manifest says " + std::to_string(file.size));
  }
  const std::string actual = digest.hex();
  if (actual != file.sha256) {
    return FailedPrecondition("digest mismatch for " + file.path + ": its SHA-256 is " + actual +
                              ", its manifest says " + file.sha256);
  }
  if (std::fflush(out.get()) != 0 || ::fsync(::fileno(out.get())) != 0) {
    return Unavailable("cannot write to the cache " + dir_.string() + " (disk full?)");
  }
  out.reset();
  std::error_code ec;
  fs::permissions(tmp, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read, ec);
  const fs::path blob = blob_path(file.sha256);
  fs::create_directories(blob.parent_path(), ec);
  fs::rename(tmp, blob, ec);
  if (ec) return Unavailable("cannot write to the cache " + dir_.string() + ": " + ec.message());
  cleanup.keep = true;
  return Status::Ok();
}

Status ContentCache::place(const ManifestFile& file, const fs::path& dest) const {
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  fs::create_hard_link(blob_path(file.sha256), dest, ec);
  if (ec) {
    ec.clear();
    fs::copy_file(blob_path(file.sha256), dest, fs::copy_options::overwrite_existing, ec);
  }
  if (ec) return Unavailable("cannot place " + file.path + " from the cache: " + ec.message());
  return Status::Ok();
}

std::uint64_t ContentCache::collect(const std::set<std::string>& keep) const {
  std::uint64_t freed = 0;
  std::error_code ec;
  for (const auto& shard : fs::directory_iterator(dir_ / "sha256", ec)) {
    for (const auto& blob : fs::directory_iterator(shard.path(), ec)) {
      if (keep.contains(blob.path().filename().string())) continue;
      // A blob linked into any mirror (another server's, sharing this cache) has more than one
      // link: it is someone's file still.
      std::error_code link_ec;
      if (fs::hard_link_count(blob.path(), link_ec) > 1 || link_ec) continue;
      std::error_code size_ec;
      const auto size = fs::file_size(blob.path(), size_ec);
      if (fs::remove(blob.path(), size_ec) && !size_ec) freed += size;
    }
  }
  return freed;
}

}  // namespace forklift
