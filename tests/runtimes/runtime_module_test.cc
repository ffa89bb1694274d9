// The loader of runtime modules (the torchscript runtime's libforklift_torchscript.so). Opening
// the real module is covered by torchscript_runtime_test.cc, which loads through it.
#include "runtimes/runtime_module.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "test_util.h"

namespace forklift {
namespace {

using testing::TempDir;
using testing::write_file;

// Points FORKLIFT_MODULE_DIR at a directory for the life of the object.
class ModuleDir {
 public:
  explicit ModuleDir(const std::filesystem::path& dir) {
    ::setenv("FORKLIFT_MODULE_DIR", dir.c_str(), 1);
  }
  ~ModuleDir() { ::unsetenv("FORKLIFT_MODULE_DIR"); }
  ModuleDir(const ModuleDir&) = delete;
  ModuleDir& operator=(const ModuleDir&) = delete;
};

TEST(RuntimeModule, AMissingModuleFailsEveryLoadSayingWhereItLooked) {
  TempDir dir;
  ModuleDir env(dir.path());
  Loader load = module_loader("libforklift_nothing.so", "entry");
  LoadContext ctx;
  for (int i = 0; i < 2; ++i) {  // the outcome of the one attempt is kept
    auto model = load(ctx);
    ASSERT_FALSE(model.ok());
    EXPECT_EQ(model.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(model.status().message().find("libforklift_nothing.so is not installed"),
              std::string::npos)
        << model.status().message();
    EXPECT_NE(model.status().message().find(dir.path().string()), std::string::npos);
    EXPECT_NE(model.status().message().find("FORKLIFT_MODULE_DIR"), std::string::npos);
  }
}

TEST(RuntimeModule, AFileThatIsNotASharedObjectIsRefusedWithoutItsContent) {
  TempDir dir;
  write_file(dir.path() / "libforklift_fake.so", "SECRET-CONTENT not an ELF file\n");
  ModuleDir env(dir.path());
  auto model = module_loader("libforklift_fake.so", "entry")(LoadContext{});
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(model.status().message().find("cannot open the runtime module"), std::string::npos)
      << model.status().message();
  EXPECT_EQ(model.status().message().find("SECRET-CONTENT"), std::string::npos);
}

}  // namespace
}  // namespace forklift
