// StreamingDetokenizer: never splits a UTF-8 sequence across outputs, and concatenates to Decode().
#include <gtest/gtest.h>

#include <cstdlib>

#include "base/utf8.h"
#include "tokenizer/tokenizer.h"
#include "vocab_builder.h"

namespace pocketlm {
namespace {

TEST(StreamingTest, FourByteEmojiAcrossByteTokens) {
  auto t = testing::Load(testing::TinySpm());
  ASSERT_TRUE(t.ok()) << t.status().message();
  StreamingDetokenizer s(**t);
  EXPECT_EQ(s.Push(3), "");  // "▁" as the first token: the space prefix is dropped
  EXPECT_EQ(s.Push(6), " a");
  EXPECT_EQ(s.Push(9), "");                   // F0
  EXPECT_EQ(s.Push(10), "");                  // 9F
  EXPECT_EQ(s.Push(11), "");                  // A6
  EXPECT_EQ(s.Push(12), "\xF0\x9F\xA6\x99");  // 🦙 complete
  EXPECT_EQ(s.Push(4), "a");
  EXPECT_EQ(s.Flush(), "");
}

TEST(StreamingTest, FlushReturnsAnIncompleteTail) {
  auto t = testing::Load(testing::TinySpm());
  ASSERT_TRUE(t.ok());
  StreamingDetokenizer s(**t);
  EXPECT_EQ(s.Push(4), "a");
  EXPECT_EQ(s.Push(9), "");
  EXPECT_EQ(s.Flush(), "\xF0");
}

TEST(StreamingTest, GoldenVocabsStreamWholeCharacters) {
  const char* env = std::getenv("PLM_GOLDEN_DIR");
  const std::string dir = std::string(env != nullptr ? env : "../shared/golden") + "/tokenizers/";
  const std::string text =
      " this is \xF0\x9F\xA6\x99.cpp \xE1\x9E\x80\xE1\x9E\xB6 \xF0\x9F\x98\xB6\xE2\x80\x8D\xF0\x9F\x8C\xAB";
  int tested = 0;
  for (const char* name : {"ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-spm.gguf", "ggml-vocab-falcon.gguf"}) {
    auto f = GgufFile::Open(dir + name);
    if (!f.ok()) continue;
    auto t = Tokenizer::FromGguf(*f);
    ASSERT_TRUE(t.ok()) << t.status().message();
    auto ids = (*t)->Encode(text, false, false);
    ASSERT_TRUE(ids.ok());
    StreamingDetokenizer s(**t);
    std::string all;
    for (int32_t id : *ids) {
      const std::string piece = s.Push(id);
      EXPECT_TRUE(IsValidUtf8(piece)) << name;
      all += piece;
    }
    all += s.Flush();
    EXPECT_EQ(all, (*t)->Decode(*ids)) << name;
    EXPECT_EQ(all, text) << name;
    ++tested;
  }
  if (tested == 0) GTEST_SKIP() << "SKIPPED: ../shared/golden not found";
}

}  // namespace
}  // namespace pocketlm
