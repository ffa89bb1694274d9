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

const std::filesystem::path kFakes = FORKLIFT_FAKE_MODULES;

LoadContext context_for(const std::string& model_id) {
  LoadContext ctx;
  ctx.model_id = model_id;
  return ctx;
}

TEST(RuntimeModule, AModuleOfThisBuildIsOpenedAndEveryLoadGoesThroughIt) {
  ModuleDir env(kFakes);
  Loader load = module_loader("libforklift_fake_same.so", "fake_entry");
  for (const char* id : {"first", "second"}) {
    auto model = load(context_for(id));
    ASSERT_FALSE(model.ok());  // the fake module's answer, passed through
    EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(model.status().message(), std::string("the fake module was asked for ") + id);
  }
}

TEST(RuntimeModule, AModuleOfAnotherBuildIsRefused) {
  ModuleDir env(kFakes);
  auto model = module_loader("libforklift_fake_other.so", "fake_entry")(context_for("m"));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(model.status().message().find("from another build of forklift"), std::string::npos)
      << model.status().message();
}

TEST(RuntimeModule, AFailedOpenIsKeptUntilTheRetryTimeThenTriedAgain) {
  TempDir dir;
  ModuleDir env(dir.path());
  Loader patient = module_loader("libforklift_fake_same.so", "fake_entry");
  Loader eager = module_loader("libforklift_fake_same.so", "fake_entry", std::chrono::seconds(0));
  EXPECT_EQ(patient(context_for("m")).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(eager(context_for("m")).status().code(), StatusCode::kFailedPrecondition);
  // Installed after the first attempt, as an operator would.
  std::filesystem::copy_file(kFakes / "libforklift_fake_same.so",
                             dir.path() / "libforklift_fake_same.so");
  EXPECT_EQ(patient(context_for("m")).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(eager(context_for("m")).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace forklift
