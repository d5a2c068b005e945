// AtomicFileWriter: readers see the old contents or the complete new contents, never a partial file.
#include "base/atomic_file.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "test_tmpdir.h"

namespace pocketlm {
namespace {

using testing_util::TempDir;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

TEST(AtomicFileTest, CommitReplacesTargetAndLeavesNoTempFile) {
  TempDir dir;
  const std::string target = dir.file("out.bin");
  WriteText(target, "old contents");
  {
    auto w = AtomicFileWriter::Create(target);
    ASSERT_TRUE(w.ok()) << w.status().message();
    ASSERT_TRUE(w->Write("new ", 4).ok());
    ASSERT_TRUE(w->WriteZeros(300).ok());
    ASSERT_TRUE(w->Write("end", 3).ok());
    EXPECT_EQ(w->bytes_written(), 307u);
    EXPECT_EQ(ReadAll(target), "old contents");  // not visible before Commit
    EXPECT_EQ(dir.Entries().size(), 2u);         // target + temp
    ASSERT_TRUE(w->Commit().ok());
  }
  const std::string got = ReadAll(target);
  ASSERT_EQ(got.size(), 307u);
  EXPECT_EQ(got.substr(0, 4), "new ");
  EXPECT_EQ(got.substr(4, 300), std::string(300, '\0'));
  EXPECT_EQ(got.substr(304), "end");
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"out.bin"});
}

TEST(AtomicFileTest, AbortKeepsOldContentsAndRemovesTempFile) {
  TempDir dir;
  const std::string target = dir.file("out.bin");
  WriteText(target, "old contents");
  {
    auto w = AtomicFileWriter::Create(target);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->Write("partial", 7).ok());
  }  // destroyed without Commit
  EXPECT_EQ(ReadAll(target), "old contents");
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"out.bin"});
}

TEST(AtomicFileTest, AbortWithoutExistingTargetLeavesNothing) {
  TempDir dir;
  {
    auto w = AtomicFileWriter::Create(dir.file("new.bin"));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->Write("x", 1).ok());
  }
  EXPECT_TRUE(dir.Entries().empty());
}

TEST(AtomicFileTest, WriteAfterCommitFails) {
  TempDir dir;
  auto w = AtomicFileWriter::Create(dir.file("a"));
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->Commit().ok());
  EXPECT_EQ(w->Write("x", 1).code(), ErrorCode::kIo);
  EXPECT_EQ(w->Commit().code(), ErrorCode::kIo);
}

TEST(AtomicFileTest, MissingDirectoryIsAnIoError) {
  TempDir dir;
  auto w = AtomicFileWriter::Create(dir.file("no/such/dir/out.bin"));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), ErrorCode::kIo);
  EXPECT_NE(w.status().message().find("no/such/dir"), std::string::npos) << w.status().message();
}

TEST(AtomicFileTest, FailedRenameKeepsTargetAndRemovesTempFile) {
  // A non-empty directory cannot be replaced by a file, so Commit's rename fails (even for root).
  TempDir dir;
  const std::string target = dir.file("occupied");
  std::filesystem::create_directory(target);
  WriteText(target + "/keep.txt", "keep");
  auto w = AtomicFileWriter::Create(target);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->Write("data", 4).ok());
  Status s = w->Commit();
  EXPECT_EQ(s.code(), ErrorCode::kIo);
  EXPECT_NE(s.message().find("rename"), std::string::npos) << s.message();
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"occupied"});
  EXPECT_EQ(ReadAll(target + "/keep.txt"), "keep");
}

TEST(AtomicFileTest, MoveAssignmentKeepsOneOwner) {
  // Long paths put the strings on the heap, so a double destruction would show under ASan.
  TempDir dir;
  const std::string a = dir.file("first-file-with-a-rather-long-name.bin");
  const std::string b = dir.file("second-file-with-a-rather-long-name.bin");
  auto wa = AtomicFileWriter::Create(a);
  auto wb = AtomicFileWriter::Create(b);
  ASSERT_TRUE(wa.ok() && wb.ok());
  AtomicFileWriter w = std::move(wa).value();
  ASSERT_TRUE(w.Write("aaa", 3).ok());
  w = std::move(wb).value();  // abandons the first temp file
  ASSERT_TRUE(w.Write("bb", 2).ok());
  ASSERT_TRUE(w.Commit().ok());
  EXPECT_EQ(ReadAll(b), "bb");
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"second-file-with-a-rather-long-name.bin"});
}

}  // namespace
}  // namespace pocketlm
