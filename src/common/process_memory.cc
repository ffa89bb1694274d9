#include "common/process_memory.h"

#include <malloc.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

namespace forklift {
namespace {

// A process's proportional set size (/proc/<pid>/smaps_rollup "Pss:"): its resident pages, the
// ones it shares with others (the python workers' interpreter and libraries) divided among them.
std::uint64_t proportional_bytes(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string key;
  std::uint64_t kb = 0;
  std::string unit;
  while (in >> key) {
    if (key == "Pss:") {
      in >> kb;
      return kb * 1024;
    }
    std::getline(in, unit);
  }
  return 0;
}

std::set<long> child_pids() {
  std::set<long> children;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream in(task.path() / "children");
    long pid = 0;
    while (in >> pid) children.insert(pid);
  }
  return children;
}

}  // namespace

std::uint64_t allocated_bytes_with_children() {
  const struct mallinfo2 info = ::mallinfo2();
  std::uint64_t total = info.uordblks + info.hblkhd;
  for (const long pid : child_pids()) total += proportional_bytes(pid);
  return total;
}

void release_free_memory() {
  ::malloc_trim(0);
}

}  // namespace forklift
