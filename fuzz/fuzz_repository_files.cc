// What an object-storage repository hands forklift: a version's file manifest, a static site's
// index, S3 error answers and listings' XML, STS answers, a shared credentials file. Oracle: no
// crash or sanitizer report; an accepted manifest's paths are all safe and inside the version,
// its sizes within the bound, and it writes back to JSON that reads as the same manifest.
#include <cstdlib>
#include <string>

#include "store/aws_credentials.h"
#include "store/file_manifest.h"
#include "store/http_object_store.h"
#include "store/s3_object_store.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  constexpr std::uint64_t kBound = 1ull << 40;
  if (auto m = forklift::parse_file_manifest(text, kBound); m.ok()) {
    if (m->total_bytes() > kBound) std::abort();
    for (const auto& f : m->files) {
      if (!forklift::is_safe_relative_path(f.path) || f.path.find("..") == 0) std::abort();
    }
    auto back = forklift::parse_file_manifest(forklift::file_manifest_json(*m), kBound);
    if (!back.ok() || back->files != m->files) std::abort();
  }
  if (auto index = forklift::parse_repository_index(text); index.ok()) {
    auto back = forklift::parse_repository_index(forklift::repository_index_json(*index));
    if (!back.ok() || back->size() != index->size()) std::abort();
  }
  const std::string code = forklift::s3_error_code(text);
  for (const char c : code) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) std::abort();
  }
  (void)forklift::parse_sts_answer(text);
  (void)forklift::parse_credentials_file(text, "default");
  return 0;
}
