#include "base/mapped_file.h"

#include <gtest/gtest.h>

#include <fstream>

#include "test_tmpdir.h"

namespace pocketlm {
namespace {

using testing_util::TempDir;

TEST(MappedFileTest, MapsContents) {
  TempDir dir;
  const std::string p = dir.file("f.bin");
  {
    std::ofstream f(p, std::ios::binary);
    f << "hello";
  }
  auto m = MappedFile::Open(p);
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m->data()), 5), "hello");
  MappedFile moved = std::move(m).value();
  EXPECT_EQ(moved.size(), 5u);
  EXPECT_EQ(moved.path(), p);
}

TEST(MappedFileTest, EmptyFileHasNoData) {
  TempDir dir;
  const std::string p = dir.file("empty");
  { std::ofstream f(p, std::ios::binary); }
  auto m = MappedFile::Open(p);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->size(), 0u);
}

TEST(MappedFileTest, ErrorsNameThePath) {
  TempDir dir;
  auto missing = MappedFile::Open(dir.file("missing.gguf"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kIo);
  EXPECT_NE(missing.status().message().find("missing.gguf"), std::string::npos);
  auto directory = MappedFile::Open(dir.path().string());
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.status().message().find("not a regular file"), std::string::npos);
}

}  // namespace
}  // namespace pocketlm
