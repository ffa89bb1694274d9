// A local content-addressed store of model files: each file kept once under its SHA-256
// (<dir>/sha256/ab/abcd…), written only after its size and digest were checked, read-only. A
// restart finds what it downloaded before; identical files across versions are one file.
#pragma once

#include <filesystem>
#include <functional>
#include <set>
#include <string>

#include "forklift/status.h"
#include "store/file_manifest.h"
#include "store/object_store.h"

namespace forklift {

class ContentCache {
 public:
  // Creates <dir>/sha256 and <dir>/tmp when missing; leftovers of an interrupted write in tmp/
  // are removed.
  static Result<ContentCache> open(const std::filesystem::path& dir);

  std::filesystem::path blob_path(const std::string& sha256) const;
  // Whether the blob is there with the file's size.
  bool has(const ManifestFile& file) const;

  // Writes the file's blob from what `fill` gives its sink, into a temporary file first: it
  // becomes the blob only with the manifest's size and digest (FailedPrecondition otherwise,
  // saying which). An interrupted or failed fill leaves nothing behind.
  Status add(const ManifestFile& file, const std::function<Status(const ObjectSink&)>& fill);

  // Puts the blob at `dest` (a hard link; a copy across file systems).
  Status place(const ManifestFile& file, const std::filesystem::path& dest) const;

  // Removes every blob whose digest is not in `keep` and that no mirror links to (servers may
  // share a cache); returns the bytes freed.
  std::uint64_t collect(const std::set<std::string>& keep) const;

 private:
  explicit ContentCache(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
};

}  // namespace forklift
