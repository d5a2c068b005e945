// The server's protections without sockets (src/serve/auth.h): the API key check, key files, the loopback test,
// and adapter paths resolved inside --adapter-dir, where every way out gets one and the same refusal.
#include "serve/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace pocketlm::serve {
namespace {

namespace fs = std::filesystem;

// ---- API keys ----

const std::vector<std::string> kKeys = {"sk-first-key", "second"};

TEST(ServeAuth, RightKeysPass) {
  EXPECT_EQ(CheckApiKey("Bearer sk-first-key", kKeys), AuthResult::kOk);
  EXPECT_EQ(CheckApiKey("Bearer second", kKeys), AuthResult::kOk);  // any of the keys
}

TEST(ServeAuth, NoKeyConfiguredLetsEverythingPass) {
  EXPECT_EQ(CheckApiKey("", {}), AuthResult::kOk);
  EXPECT_EQ(CheckApiKey("Bearer anything", {}), AuthResult::kOk);
}

TEST(ServeAuth, MissingOrEmptyHeaderIsMissing) {
  EXPECT_EQ(CheckApiKey("", kKeys), AuthResult::kMissing);
  EXPECT_EQ(CheckApiKey("   ", kKeys), AuthResult::kMissing);
  EXPECT_EQ(CheckApiKey("Bearer", kKeys), AuthResult::kMissing);
  EXPECT_EQ(CheckApiKey("Bearer   ", kKeys), AuthResult::kMissing);
}

TEST(ServeAuth, WrongKeyIsRefusedEvenWhenItIsAPrefixOrExtension) {
  EXPECT_EQ(CheckApiKey("Bearer wrong", kKeys), AuthResult::kWrongKey);
  EXPECT_EQ(CheckApiKey("Bearer sk-first-ke", kKeys), AuthResult::kWrongKey);    // a prefix of a key
  EXPECT_EQ(CheckApiKey("Bearer sk-first-key1", kKeys), AuthResult::kWrongKey);  // a key plus one byte
  EXPECT_EQ(CheckApiKey("Bearer SK-FIRST-KEY", kKeys), AuthResult::kWrongKey);   // keys are case-sensitive
  EXPECT_EQ(CheckApiKey("Bearer sk-first-key second", kKeys), AuthResult::kWrongKey);
  EXPECT_EQ(CheckApiKey("Bearer s", {"s", "t"}), AuthResult::kOk);
}

TEST(ServeAuth, SchemeIsCaseInsensitiveAndSpacesAreIgnored) {
  EXPECT_EQ(CheckApiKey("bearer second", kKeys), AuthResult::kOk);
  EXPECT_EQ(CheckApiKey("BEARER second", kKeys), AuthResult::kOk);
  EXPECT_EQ(CheckApiKey("  Bearer \t  second  ", kKeys), AuthResult::kOk);
}

TEST(ServeAuth, OtherSchemesAreNotBearer) {
  EXPECT_EQ(CheckApiKey("Basic c2Vjb25kOg==", kKeys), AuthResult::kNotBearer);
  EXPECT_EQ(CheckApiKey("second", kKeys), AuthResult::kNotBearer);  // a bare key, no scheme
  EXPECT_EQ(CheckApiKey("Bearersecond", kKeys), AuthResult::kNotBearer);
}

TEST(ServeAuth, ConstantTimeEqualsIsEquality) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abd", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abcabc", "abc"));  // the key cycles under a longer input: still unequal
  EXPECT_FALSE(ConstantTimeEquals("", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", ""));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  // Bytes above 0x7f compare as bytes.
  EXPECT_FALSE(ConstantTimeEquals("\xff", "\x7f"));
}

TEST(ServeAuth, ErrorsAre401InOpenAIsShape) {
  for (AuthResult r : {AuthResult::kMissing, AuthResult::kNotBearer, AuthResult::kWrongKey}) {
    const ApiError e = AuthError(r);
    EXPECT_EQ(e.http_status, 401);
    const nlohmann::json j = e.ToJson();
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    EXPECT_EQ(j["error"]["code"], "invalid_api_key");
    EXPECT_TRUE(j["error"]["param"].is_null());
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  }
  EXPECT_NE(AuthError(AuthResult::kMissing).message.find("Authorization: Bearer"), std::string::npos);
}

TEST(ServeAuth, OnlyHealthIsOpen) {
  EXPECT_FALSE(AuthRequired("/health"));
  for (const char* p : {"/v1/models", "/v1/chat/completions", "/v1/completions", "/admin/adapters", "/admin/adapters/x",
                        "/health/", "/healthz", "/", "/no-such-path"}) {
    EXPECT_TRUE(AuthRequired(p)) << p;
  }
}

TEST(ServeAuth, KeysMustBePrintableAsciiAndErrorsNeverShowThem) {
  EXPECT_TRUE(ValidateApiKey("sk-Abc_123.~", "--api-key").ok());
  for (const std::string& key :
       {std::string(""), std::string("has space"), std::string("tab\tkey"), std::string("nl\nkey"),
        std::string("del\x7f"), std::string("caf\xc3\xa9"), std::string("nul\0key", 7)}) {
    const Status s = ValidateApiKey(key, "--api-key");
    EXPECT_FALSE(s.ok()) << key;
    EXPECT_NE(s.message().find("--api-key"), std::string::npos);
    if (!key.empty()) {
      EXPECT_EQ(s.message().find(key), std::string::npos) << s.message();
    }
  }
}

TEST(ServeAuth, KeyFileSkipsBlankAndCommentLines) {
  auto keys = ParseApiKeyFile("# team keys\n\nfirst\r\n   second  \n  # indented comment\nthird", "keys.txt");
  ASSERT_TRUE(keys.ok()) << keys.status().message();
  EXPECT_EQ(keys.value(), (std::vector<std::string>{"first", "second", "third"}));
}

TEST(ServeAuth, KeyFileWithoutKeysIsAnErrorNamingIt) {
  for (const char* text : {"", "\n\n", "# only a comment\n", "  \r\n#x\n"}) {
    auto keys = ParseApiKeyFile(text, "/etc/plm/keys.txt");
    ASSERT_FALSE(keys.ok()) << text;
    EXPECT_NE(keys.status().message().find("/etc/plm/keys.txt"), std::string::npos);
  }
}

TEST(ServeAuth, KeyFileBadLineNamesTheLineNotTheKey) {
  auto keys = ParseApiKeyFile("good\nbad key\n", "keys.txt");
  ASSERT_FALSE(keys.ok());
  EXPECT_NE(keys.status().message().find("keys.txt line 2"), std::string::npos) << keys.status().message();
  EXPECT_EQ(keys.status().message().find("bad key"), std::string::npos);
}

TEST(ServeAuth, LoopbackHosts) {
  for (const char* h : {"127.0.0.1", "127.1.2.3", "localhost", "LocalHost", "::1", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackHost(h)) << h;
  }
  for (const char* h :
       {"0.0.0.0", "::", "192.168.1.2", "10.0.0.1", "::ffff:10.0.0.1", "example.com", "128.0.0.1", ""}) {
    EXPECT_FALSE(IsLoopbackHost(h)) << h;
  }
}

// ---- The adapter directory ----

// root/adapters/ holds good.gguf, sub/nested.gguf, and links: link-in -> good.gguf, link-out -> ../outside.gguf,
// link-abs-out -> root/outside.gguf (absolute), link-dir-out -> .. (the parent directory), dangling-out ->
// ../missing.gguf, dangling-in -> missing.gguf, loop -> loop, fifo (a FIFO). root/outside.gguf is outside.
class ServeAdapterDir : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "plm_adapter_dir_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = fs::canonical(tmpl);
    dir_ = root_ / "adapters";
    fs::create_directories(dir_ / "sub");
    Touch(dir_ / "good.gguf");
    Touch(dir_ / "sub" / "nested.gguf");
    Touch(root_ / "outside.gguf");
    fs::create_symlink("good.gguf", dir_ / "link-in");
    fs::create_symlink("../outside.gguf", dir_ / "link-out");
    fs::create_symlink(root_ / "outside.gguf", dir_ / "link-abs-out");
    fs::create_symlink("..", dir_ / "link-dir-out");
    fs::create_symlink("../missing.gguf", dir_ / "dangling-out");
    fs::create_symlink("missing.gguf", dir_ / "dangling-in");
    fs::create_symlink("loop", dir_ / "loop");
    ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0);
    auto canonical = CanonicalAdapterDir(dir_.string());
    ASSERT_TRUE(canonical.ok()) << canonical.status().message();
    canonical_ = canonical.value();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  static void Touch(const fs::path& p) { std::ofstream(p) << "GGUF"; }

  // The resolved path, or "" with a test failure.
  std::string Resolved(std::string_view requested) {
    Result<std::string> r = ResolveAdapterPath(canonical_, requested);
    EXPECT_TRUE(r.ok()) << requested << ": " << r.status().message();
    return r.ok() ? r.value() : "";
  }
  // Expects the one refusal, which names neither the directory nor anything the client sent.
  void ExpectRefused(std::string_view requested) {
    Result<std::string> r = ResolveAdapterPath(canonical_, requested);
    ASSERT_FALSE(r.ok()) << requested << " resolved to " << r.value();
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), kAdapterPathRefused) << requested;
    EXPECT_EQ(r.status().message().find(root_.string()), std::string::npos);
  }

  fs::path root_, dir_, canonical_;
};

TEST_F(ServeAdapterDir, GoodNamesResolveToTheirCanonicalPath) {
  EXPECT_EQ(Resolved("good.gguf"), (dir_ / "good.gguf").string());
  EXPECT_EQ(Resolved("./good.gguf"), (dir_ / "good.gguf").string());
  EXPECT_EQ(Resolved("sub/nested.gguf"), (dir_ / "sub" / "nested.gguf").string());
  EXPECT_EQ(Resolved("sub//nested.gguf"), (dir_ / "sub" / "nested.gguf").string());
}

TEST_F(ServeAdapterDir, LinkWithinTheDirectoryResolvesToItsTarget) {
  EXPECT_EQ(Resolved("link-in"), (dir_ / "good.gguf").string());
}

TEST_F(ServeAdapterDir, AbsolutePathsAreRefusedEvenInsideTheDirectory) {
  ExpectRefused("/etc/passwd");
  ExpectRefused((dir_ / "good.gguf").string());
  ExpectRefused("/");
}

TEST_F(ServeAdapterDir, DotDotIsRefusedAnywhere) {
  ExpectRefused("..");
  ExpectRefused("../outside.gguf");
  ExpectRefused("sub/../good.gguf");  // would stay inside, still refused: no `..` at all
  ExpectRefused("sub/..");
  ExpectRefused("../adapters/good.gguf");
}

TEST_F(ServeAdapterDir, LinksLeadingOutAreRefused) {
  ExpectRefused("link-out");
  ExpectRefused("link-abs-out");
  ExpectRefused("link-dir-out/outside.gguf");  // through a linked directory
  // Where the link leads back in, the canonical location is inside: that is what counts.
  EXPECT_EQ(Resolved("link-dir-out/adapters/good.gguf"), (dir_ / "good.gguf").string());
}

TEST_F(ServeAdapterDir, MissingFilesAndDanglingLinksGetTheSameRefusal) {
  // A missing name inside, and dangling links whose targets are missing inside and outside: one answer for all,
  // the same as for a link out to a file that exists, so no answer tells whether something outside exists.
  ExpectRefused("missing.gguf");
  ExpectRefused("sub/missing.gguf");
  ExpectRefused("dangling-in");
  ExpectRefused("dangling-out");
  ExpectRefused("loop");
}

TEST_F(ServeAdapterDir, EmptyNamesDirectoriesFifosAndNulBytesAreRefused) {
  ExpectRefused("");
  ExpectRefused(".");
  ExpectRefused("sub");
  ExpectRefused("sub/");
  ExpectRefused("fifo");  // open() of a FIFO would block a server thread
  ExpectRefused(std::string_view("good.gguf\0/../../outside.gguf", 29));
  ExpectRefused(std::string_view("good.gguf\0", 10));
}

TEST_F(ServeAdapterDir, TheDirectoryMustExistAndIsCanonicalized) {
  auto missing = CanonicalAdapterDir((root_ / "nope").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find((root_ / "nope").string()), std::string::npos);
  auto file = CanonicalAdapterDir((root_ / "outside.gguf").string());
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("not a directory"), std::string::npos);
  fs::create_symlink(dir_, root_ / "dir-link");
  auto linked = CanonicalAdapterDir((root_ / "dir-link/").string());
  ASSERT_TRUE(linked.ok()) << linked.status().message();
  EXPECT_EQ(linked.value(), dir_);
  // Resolution through a directory given by a link works the same.
  EXPECT_EQ(ResolveAdapterPath(linked.value(), "good.gguf").value(), (dir_ / "good.gguf").string());
}

TEST_F(ServeAdapterDir, RootAsTheDirectoryStillRefusesDotDotAndAbsolute) {
  const fs::path root("/");
  EXPECT_FALSE(ResolveAdapterPath(root, "/etc/passwd").ok());
  EXPECT_FALSE(ResolveAdapterPath(root, "../etc/passwd").ok());
  const std::string rel = (dir_ / "good.gguf").string().substr(1);  // relative to /
  EXPECT_EQ(ResolveAdapterPath(root, rel).value(), (dir_ / "good.gguf").string());
}

}  // namespace
}  // namespace pocketlm::serve
