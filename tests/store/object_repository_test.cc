// The parsers and pieces behind object-storage repositories, fed hostile input, and the mirror
// against an in-memory store.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include "common/sha256.h"
#include "store/aws_credentials.h"
#include "store/content_cache.h"
#include "store/file_manifest.h"
#include "store/http_object_store.h"
#include "store/repository_mirror.h"
#include "store/s3_object_store.h"

namespace forklift {
namespace {

namespace fs = std::filesystem;

std::string manifest_of(const std::map<std::string, std::string>& files) {
  FileManifest m;
  for (const auto& [path, body] : files) m.files.push_back({path, body.size(), sha256_hex(body)});
  return file_manifest_json(m);
}

TEST(FileManifest, RoundTripsAndRefusesHostileEntries) {
  const std::string good = manifest_of({{"model.yaml", "a"}, {"sub/x.bin", "bb"}});
  auto m = parse_file_manifest(good, 1 << 20);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->files.size(), 2u);
  EXPECT_EQ(m->total_bytes(), 3u);
  const std::string zero(64, '0');
  for (const std::string& bad : std::vector<std::string>{
           R"({"format":2,"files":[]})",
           R"({"format":1})",
           R"({"format":1,"files":[{"path":"../x","size":1,"sha256":")" + zero + R"("}]})",
           R"({"format":1,"files":[{"path":"/etc/passwd","size":1,"sha256":")" + zero + R"("}]})",
           R"({"format":1,"files":[{"path":"a//b","size":1,"sha256":")" + zero + R"("}]})",
           R"({"format":1,"files":[{"path":"a\\b","size":1,"sha256":")" + zero + R"("}]})",
           R"({"format":1,"files":[{"path":"a","size":-1,"sha256":")" + zero + R"("}]})",
           R"({"format":1,"files":[{"path":"a","size":1,"sha256":"XYZ"}]})",
           R"({"format":1,"files":[{"path":"forklift-files.json","size":1,"sha256":")" + zero +
               R"("}]})",
           R"({"format":1,"files":[{"path":"a","size":1,"sha256":")" + zero +
               R"("},{"path":"a","size":1,"sha256":")" + zero + R"("}]})",
           R"({"format":1,"files":[{"path":"a","size":1,"sha256":")" + zero +
               R"("},{"path":"a/b","size":1,"sha256":")" + zero + R"("}]})",
           std::string("{\"format\":1,\"files\":[{\"path\":\"a\\u0001\",\"size\":1,\"sha256\":\"") +
               zero + "\"}]}",
           std::string("not json secret-content"),
       }) {
    auto parsed = parse_file_manifest(bad, 1 << 20);
    EXPECT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().message().find("secret-content"), std::string::npos);
  }
  // Sizes add up past the bound (and past 2^64) without wrapping.
  const std::string huge =
      R"({"format":1,"files":[{"path":"a","size":18446744073709551615,"sha256":")" + zero +
      R"("},{"path":"b","size":2,"sha256":")" + zero + R"("}]})";
  EXPECT_FALSE(parse_file_manifest(huge, ~0ull).ok());
  EXPECT_FALSE(parse_file_manifest(manifest_of({{"a", "xyz"}}), 2).ok());
}

TEST(FileManifest, IsMadeFromAVersionDirectoryWithoutHiddenFilesOrEscapingLinks) {
  const fs::path dir = fs::temp_directory_path() / ("fm-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "v" / "sub");
  std::ofstream(dir / "v" / "model.yaml") << "id: x\n";
  std::ofstream(dir / "v" / "sub" / "w.bin") << "weights";
  std::ofstream(dir / "v" / ".hidden") << "no";
  std::ofstream(dir / "outside") << "secret";
  fs::create_symlink(dir / "outside", dir / "v" / "leak");
  auto m = make_file_manifest(dir / "v");
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->files.size(), 2u);
  EXPECT_EQ(m->files[0].path, "model.yaml");
  EXPECT_EQ(m->files[1].path, "sub/w.bin");
  EXPECT_EQ(m->files[1].sha256, sha256_hex("weights"));
  fs::remove_all(dir);
}

TEST(S3Url, NamesABucketAndASafePrefix) {
  auto u = parse_s3_url("s3://my-bucket/team/models/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->bucket, "my-bucket");
  EXPECT_EQ(u->prefix, "team/models/");
  EXPECT_EQ(parse_s3_url("s3://b12")->prefix, "");
  for (const char* bad : {"s3://", "s3://Bucket", "s3://ab", "s3://b/../x", "s3://b//x",
                          "http://b/x", "s3://-bucket"}) {
    EXPECT_FALSE(parse_s3_url(bad).ok()) << bad;
  }
}

TEST(S3Errors, KeepOnlyTheCodesLetters) {
  EXPECT_EQ(s3_error_code("<Error><Code>NoSuchKey</Code><Message>m</Message></Error>"),
            "NoSuchKey");
  EXPECT_EQ(s3_error_code("<Error><Code>Bad\"<x>Code</Code></Error>"), "");
  EXPECT_EQ(s3_error_code("<Error><Code>Evil\nLog: injected</Code></Error>"), "EvilLoginjected");
  EXPECT_EQ(s3_error_code("not xml"), "");
}

TEST(AwsCredentials, ComeFromTheEnvironmentThenTheFile) {
  std::map<std::string, std::string> env{
      {"AWS_ACCESS_KEY_ID", "AK"}, {"AWS_SECRET_ACCESS_KEY", "SK"}, {"AWS_SESSION_TOKEN", "T"}};
  auto lookup = [&env](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  AwsCredentialProvider provider("us-east-1", lookup);
  auto c = provider.get();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key, "AK");
  EXPECT_EQ(c->session_token, "T");
  EXPECT_EQ(c->source, "environment");

  const fs::path file = fs::temp_directory_path() / ("creds-" + std::to_string(::getpid()));
  std::ofstream(file) << "[default]\naws_access_key_id = D\naws_secret_access_key=DS\n"
                         "[profile other]\naws_access_key_id=O\naws_secret_access_key = OS\n";
  env = {{"AWS_SHARED_CREDENTIALS_FILE", file.string()}, {"AWS_PROFILE", "other"}};
  AwsCredentialProvider from_file("us-east-1", lookup);
  auto f = from_file.get();
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->access_key, "O");
  EXPECT_EQ(f->secret_key, "OS");
  env = {{"HOME", "/nonexistent"}};
  AwsCredentialProvider none("us-east-1", lookup);
  EXPECT_TRUE(none.get()->anonymous());
  fs::remove(file);
}

TEST(AwsCredentials, FileProfilesAndStsAnswersAreParsedStrictly) {
  EXPECT_FALSE(parse_credentials_file("[default]\naws_access_key_id=A\n", "default").ok());
  EXPECT_EQ(parse_credentials_file("[x]\n", "default").status().code(), StatusCode::kNotFound);
  auto sts = parse_sts_answer(
      "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
      "<AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey><SessionToken>T"
      "</SessionToken><Expiration>2030-01-02T03:04:05Z</Expiration></Credentials>"
      "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>");
  ASSERT_TRUE(sts.ok()) << sts.status().message();
  EXPECT_EQ(sts->session_token, "T");
  EXPECT_FALSE(parse_sts_answer("<x/>").ok());
  EXPECT_FALSE(parse_sts_answer("<<<").ok());
  // Expirations no clock can hold (nanoseconds from 1970 overflow near 1678 and 2262) are
  // refused, not overflowed (UBSan, in the fuzz target, saw year -953).
  const auto answer_expiring = [](const std::string& when) {
    return parse_sts_answer(
        "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
        "<AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey><Expiration>" +
        when +
        "</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
        "</AssumeRoleWithWebIdentityResponse>");
  };
  EXPECT_TRUE(answer_expiring("2200-12-31T23:59:59Z").ok());
  for (const char* when : {"-953-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
                           "2201-01-01T00:00:00Z", "9999-12-31T23:59:59Z"}) {
    EXPECT_FALSE(answer_expiring(when).ok()) << when;
  }
}

TEST(RepositoryIndex, SkipsBadEntriesAndRoundTrips) {
  const std::string sha(64, 'a');
  auto index = parse_repository_index(
      R"({"format":1,"versions":[{"path":"eta/1","files_sha256":")" + sha +
      R"("},{"path":"../x","files_sha256":")" + sha + R"("},{"path":"eta/2"}]})");
  ASSERT_TRUE(index.ok());
  ASSERT_EQ(index->size(), 1u);
  auto again = parse_repository_index(repository_index_json(*index));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].path, "eta/1");
  EXPECT_FALSE(parse_repository_index("[]").ok());
}

// A store in memory: objects by key, with a count of reads.
class MemoryStore final : public ObjectStore {
 public:
  std::map<std::string, std::string> objects;
  std::atomic<int> gets{0};  // called from the download threads
  const std::string& url() const override { return url_; }
  Result<std::vector<ObjectInfo>> list_manifests(std::size_t) override {
    std::vector<ObjectInfo> out;
    for (const auto& [k, v] : objects) out.push_back({k, v.size(), sha256_hex(v)});
    return out;
  }
  Status get(const std::string& key, std::uint64_t max_bytes, const ObjectSink& sink) override {
    ++gets;
    auto it = objects.find(key);
    if (it == objects.end()) return NotFound("no " + key);
    if (it->second.size() > max_bytes) return FailedPrecondition("too big");
    return sink(it->second);
  }
  Status put_file(const std::string&, const std::string&, const std::string&) override {
    return FailedPrecondition("not used here");
  }
  Status put(const std::string& key, std::string_view body, const std::string&) override {
    objects[key] = std::string(body);
    return Status::Ok();
  }
  bool writable() const override { return true; }

 private:
  std::string url_ = "memory://";
};

TEST(RepositoryMirror, MirrorsWholeVersionsRejectsCorruptOnesAndFollowsDeletions) {
  const fs::path root = fs::temp_directory_path() / ("mirror-" + std::to_string(::getpid()));
  fs::remove_all(root);
  auto store = std::make_unique<MemoryStore>();
  MemoryStore* s = store.get();
  const std::map<std::string, std::string> v1{{"model.yaml", "id: m\n"}, {"w.bin", "weights"}};
  for (const auto& [p, b] : v1) s->objects["m/1/" + p] = b;
  s->objects["m/1/forklift-files.json"] = manifest_of(v1);
  // Version 2 claims other bytes for w.bin than the store holds.
  s->objects["m/2/model.yaml"] = "id: m\n";
  s->objects["m/2/w.bin"] = "tampered";
  s->objects["m/2/forklift-files.json"] =
      manifest_of({{"model.yaml", "id: m\n"}, {"w.bin", "original"}});
  auto cache = ContentCache::open(root / "blobs");
  ASSERT_TRUE(cache.ok());
  RepositoryStats stats;
  // A version left in the mirror that its state file does not know goes when it is claimed.
  fs::create_directories(root / "mirror" / "left" / "3");
  std::ofstream(root / "mirror" / "left" / "3" / "model.yaml") << "runtime: x\n";
  RepositoryMirror mirror(std::move(store), root / "mirror", std::move(cache).value(), {}, &stats);
  ASSERT_TRUE(mirror.claim().ok());
  EXPECT_FALSE(fs::exists(root / "mirror" / "left" / "3"));
  {
    // A second server on the same mirror is refused: it would remove the first one's versions.
    auto other_cache = ContentCache::open(root / "blobs");
    RepositoryMirror other(std::make_unique<MemoryStore>(), root / "mirror",
                           std::move(other_cache).value(), {}, nullptr);
    EXPECT_EQ(other.claim().code(), StatusCode::kFailedPrecondition);
  }
  auto r = mirror.sync();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->added, 1);
  EXPECT_EQ(r->rejected, 1);
  EXPECT_TRUE(fs::exists(root / "mirror" / "m" / "1" / "w.bin"));
  EXPECT_FALSE(fs::exists(root / "mirror" / "m" / "2"));
  EXPECT_NE(stats.rejected().at("m/2").find("digest mismatch for w.bin"), std::string::npos);

  // An unchanged store costs no object read; a deleted version leaves the mirror.
  const int gets = s->gets;
  r = mirror.sync();
  EXPECT_EQ(s->gets, gets);
  EXPECT_EQ(r->unchanged, 1);
  s->objects.erase("m/1/forklift-files.json");
  r = mirror.sync();
  EXPECT_EQ(r->removed, 1);
  EXPECT_FALSE(fs::exists(root / "mirror" / "m" / "1"));
  fs::remove_all(root);
}

TEST(ContentCache, KeepsOnlyCheckedBlobs) {
  const fs::path root = fs::temp_directory_path() / ("cache-" + std::to_string(::getpid()));
  fs::remove_all(root);
  auto cache = ContentCache::open(root);
  ASSERT_TRUE(cache.ok());
  const ManifestFile f{"a", 5, sha256_hex("hello")};
  // Short, long and wrong bytes never become a blob.
  EXPECT_FALSE(cache->add(f, [](const ObjectSink& sink) { return sink("hell"); }).ok());
  EXPECT_FALSE(cache->add(f, [](const ObjectSink& sink) { return sink("hello!"); }).ok());
  EXPECT_FALSE(cache->add(f, [](const ObjectSink& sink) { return sink("jello"); }).ok());
  EXPECT_FALSE(cache->has(f));
  EXPECT_TRUE(fs::is_empty(root / "tmp"));
  ASSERT_TRUE(cache->add(f, [](const ObjectSink& sink) { return sink("hello"); }).ok());
  EXPECT_TRUE(cache->has(f));
  // Linked into a mirror (this server's or another's sharing the cache): kept.
  ASSERT_TRUE(cache->place(f, root / "mirror" / "a").ok());
  EXPECT_EQ(cache->collect({}), 0u);
  fs::remove(root / "mirror" / "a");
  EXPECT_EQ(cache->collect({}), 5u);
  EXPECT_FALSE(cache->has(f));
  fs::remove_all(root);
}

}  // namespace
}  // namespace forklift
