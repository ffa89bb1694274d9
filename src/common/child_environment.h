// The environment a child process running a team's code gets (python workers, python
// trainers): the server's, without its own secrets, so that code sees what it needs and not the
// keys to the server. Removed: FORKLIFT_* (the admin and feedback tokens, connection strings) and
// PG* (libpq's passwords and hosts), except the variables the caller names to keep.
#pragma once

#include <unistd.h>  // environ (declared with _GNU_SOURCE, which g++ defines)

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace forklift {

class ChildEnvironment {
 public:
  // `keep`: whole names of variables to pass on all the same (never a secret: the python
  // worker, forklift itself, needs FORKLIFT_MODULE_DIR to open the module the server would).
  explicit ChildEnvironment(std::initializer_list<std::string_view> keep = {}) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      const std::string_view var(*e);
      const std::string_view name = var.substr(0, var.find('='));
      const bool kept = std::find(keep.begin(), keep.end(), name) != keep.end();
      if (!kept && (var.starts_with("FORKLIFT_") || var.starts_with("PG"))) continue;
      vars_.emplace_back(var);
    }
    for (auto& v : vars_) pointers_.push_back(v.data());
    pointers_.push_back(nullptr);
  }
  ChildEnvironment(const ChildEnvironment&) = delete;
  ChildEnvironment& operator=(const ChildEnvironment&) = delete;

  // For posix_spawn's envp; valid while this object lives.
  char** envp() { return pointers_.data(); }

 private:
  std::vector<std::string> vars_;
  std::vector<char*> pointers_;
};

}  // namespace forklift
