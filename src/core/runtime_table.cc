#include "core/runtime_table.h"

#include <map>
#include <memory>
#include <mutex>

namespace forklift {
namespace {

struct Table {
  std::mutex mu;
  // unique_ptr keeps each RuntimeInfo at a stable address for find_runtime's callers.
  std::map<std::string, std::unique_ptr<RuntimeInfo>, std::less<>> by_name;
};

// Function-local static: registration may run during static initialisation of other files.
Table& table() {
  static Table t;
  return t;
}

}  // namespace

bool register_runtime(RuntimeInfo info) {
  Table& t = table();
  std::lock_guard lock(t.mu);
  std::string name = info.name;
  return t.by_name.emplace(name, std::make_unique<RuntimeInfo>(std::move(info))).second;
}

const RuntimeInfo* find_runtime(std::string_view name) {
  Table& t = table();
  std::lock_guard lock(t.mu);
  auto it = t.by_name.find(name);
  return it == t.by_name.end() ? nullptr : it->second.get();
}

std::vector<std::string> runtime_names() {
  Table& t = table();
  std::lock_guard lock(t.mu);
  std::vector<std::string> names;
  for (const auto& [name, info] : t.by_name) names.push_back(name);
  return names;
}

}  // namespace forklift
