#include "common/child_environment.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <string>
#include <vector>

namespace forklift {
namespace {

std::vector<std::string> names(ChildEnvironment& env) {
  std::vector<std::string> out;
  for (char** e = env.envp(); *e != nullptr; ++e) {
    const std::string var = *e;
    out.push_back(var.substr(0, var.find('=')));
  }
  return out;
}

bool has(const std::vector<std::string>& all, const std::string& name) {
  return std::find(all.begin(), all.end(), name) != all.end();
}

TEST(ChildEnvironment, DropsTheServersSecretsAndKeepsWhatItIsAskedTo) {
  ::setenv("FORKLIFT_ADMIN_TOKEN", "secret", 1);
  ::setenv("FORKLIFT_MODULE_DIR", "/opt/modules", 1);
  ::setenv("PGPASSWORD", "secret", 1);
  ::setenv("FORKLIFT_TEST_PLAIN", "x", 1);
  ChildEnvironment plain;
  const auto dropped = names(plain);
  EXPECT_FALSE(has(dropped, "FORKLIFT_ADMIN_TOKEN"));
  EXPECT_FALSE(has(dropped, "FORKLIFT_MODULE_DIR"));
  EXPECT_FALSE(has(dropped, "PGPASSWORD"));
  EXPECT_FALSE(has(dropped, "FORKLIFT_TEST_PLAIN"));
  ChildEnvironment keeping({"FORKLIFT_MODULE_DIR"});
  const auto kept = names(keeping);
  EXPECT_TRUE(has(kept, "FORKLIFT_MODULE_DIR"));
  EXPECT_FALSE(has(kept, "FORKLIFT_ADMIN_TOKEN"));
  EXPECT_FALSE(has(kept, "PGPASSWORD"));
  // A name is kept whole, not as a prefix.
  ::setenv("FORKLIFT_MODULE_DIR_AND_MORE", "y", 1);
  ChildEnvironment again({"FORKLIFT_MODULE_DIR"});
  EXPECT_FALSE(has(names(again), "FORKLIFT_MODULE_DIR_AND_MORE"));
  for (const char* name : {"FORKLIFT_ADMIN_TOKEN", "FORKLIFT_MODULE_DIR", "PGPASSWORD",
                           "FORKLIFT_TEST_PLAIN", "FORKLIFT_MODULE_DIR_AND_MORE"}) {
    ::unsetenv(name);
  }
}

}  // namespace
}  // namespace forklift
