// JSONL datasets: the three line shapes and their loss masks, every kind of bad line with its FILE:LINE message,
// strict vs skipping, file handling (BOM, CRLF, missing file), and arbitrary bytes never crashing the reader.
#include "train/data/dataset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "../../base/test_tmpdir.h"
#include "data_test_util.h"

namespace pocketlm {
namespace {

using testing::ByteBpeVocab;
using testing::GemmaLikeVocab;
using testing::LoadWriter;

// Byte-level vocab: the token of byte b is b; then <s> 257, </s> 258, <|im_start|> 259, <|im_end|> 260.
constexpr int32_t kBos = 257, kEos = 258, kImStart = 259, kImEnd = 260;

std::unique_ptr<Tokenizer> ChatMLVocab() {
  return LoadWriter(ByteBpeVocab({"<s>", "</s>", "<|im_start|>", "<|im_end|>"}, /*add_bos=*/true));
}

Dataset Parse(const Tokenizer& tok, const std::string& contents, const DatasetOptions& opt = {}) {
  auto r = ParseJsonlDataset(contents, "test.jsonl", tok, opt);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(r).value() : Dataset{};
}

std::vector<int32_t> Ids(std::string_view s) {
  std::vector<int32_t> out;
  for (char c : s) out.push_back(static_cast<uint8_t>(c));
  return out;
}

TEST(DatasetTest, TextLineTrainsOnEverything) {
  auto tok = ChatMLVocab();
  ASSERT_TRUE(tok);
  const Dataset ds = Parse(*tok, "{\"text\": \"ab\"}\n");
  ASSERT_EQ(ds.examples.size(), 1u);
  EXPECT_EQ(ds.examples[0].tokens, (std::vector<int32_t>{kBos, 'a', 'b', kEos}));
  EXPECT_EQ(ds.examples[0].trainable, (std::vector<uint8_t>{0, 1, 1, 1}));
  EXPECT_EQ(ds.stats.tokens, 4);
  EXPECT_EQ(ds.stats.trainable_tokens, 3);

  // Special-token text in "text" is text.
  const Dataset inj = Parse(*tok, R"({"text": "<|im_end|>"})");
  ASSERT_EQ(inj.examples.size(), 1u);
  std::vector<int32_t> want = {kBos};
  for (int32_t id : Ids("<|im_end|>")) want.push_back(id);
  want.push_back(kEos);
  EXPECT_EQ(inj.examples[0].tokens, want);
}

TEST(DatasetTest, PromptCompletionTrainsOnCompletionAndEos) {
  auto tok = ChatMLVocab();
  ASSERT_TRUE(tok);
  const std::string line = R"({"prompt": "Q", "completion": "A", "id": 7})";
  const Dataset ds = Parse(*tok, line);
  ASSERT_EQ(ds.examples.size(), 1u);
  EXPECT_EQ(ds.examples[0].tokens, (std::vector<int32_t>{kBos, 'Q', 'A', kEos}));
  EXPECT_EQ(ds.examples[0].trainable, (std::vector<uint8_t>{0, 0, 1, 1}));

  DatasetOptions all;
  all.train_on_prompt = true;
  EXPECT_EQ(Parse(*tok, line, all).examples[0].trainable, (std::vector<uint8_t>{0, 1, 1, 1}));
  DatasetOptions no_eos;
  no_eos.add_eos = false;
  const Dataset ne = Parse(*tok, line, no_eos);
  EXPECT_EQ(ne.examples[0].tokens, (std::vector<int32_t>{kBos, 'Q', 'A'}));
  EXPECT_EQ(ne.examples[0].trainable, (std::vector<uint8_t>{0, 0, 1}));
}

TEST(DatasetTest, MessagesTrainOnAssistantReplies) {
  auto tok = ChatMLVocab();
  ASSERT_TRUE(tok);
  const std::string line = R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},)"
                           R"( {"role": "assistant", "content": "A"}, {"role": "user", "content": "V"},)"
                           R"( {"role": "assistant", "content": "B", "weight": 0}]})";
  const Dataset ds = Parse(*tok, line);
  ASSERT_EQ(ds.examples.size(), 1u);
  const TrainExample& ex = ds.examples[0];
  std::vector<int32_t> want = {kBos};
  auto turn = [&](std::string_view role, std::string_view content) {
    want.push_back(kImStart);
    for (int32_t id : Ids(std::string(role) + "\n" + std::string(content))) want.push_back(id);
    want.push_back(kImEnd);
    want.push_back('\n');
  };
  turn("system", "S");
  turn("user", "U");
  turn("assistant", "A");
  turn("user", "V");
  turn("assistant", "B");
  EXPECT_EQ(ex.tokens, want);
  // Trainable: "A" (the first 'A' token: roles are lower case) and its <|im_end|>; "B" has weight 0.
  std::vector<uint8_t> mask(want.size(), 0);
  const size_t a = std::find(want.begin(), want.end(), 'A') - want.begin();
  ASSERT_EQ(want[a + 1], kImEnd);
  mask[a] = mask[a + 1] = 1;
  EXPECT_EQ(ex.trainable, mask);

  DatasetOptions all;
  all.train_on_prompt = true;
  const Dataset ds_all = Parse(*tok, line, all);
  std::vector<uint8_t> all_mask(want.size(), 1);
  all_mask[0] = 0;
  EXPECT_EQ(ds_all.examples[0].trainable, all_mask);
}

struct BadLine {
  std::string line;
  SkipReason reason;
  std::string message;  // expected substring of the message after "test.jsonl:N: "
};

TEST(DatasetTest, EveryBadLineKindIsReportedWithItsLineNumber) {
  auto tok = ChatMLVocab();
  ASSERT_TRUE(tok);
  const std::string deep = std::string(65, '[') + std::string(65, ']');
  const std::vector<BadLine> bad = {
      {"{not json", SkipReason::kInvalidJson, "invalid JSON: parse error at column 3"},
      {"{\"text\": \"\xFF\"}", SkipReason::kInvalidUtf8, "invalid UTF-8 at byte 11"},
      {"[1, 2]", SkipReason::kBadFields, "must be a JSON object, not array"},
      {R"({"text": 5})", SkipReason::kBadFields, "\"text\" must be a string, not number"},
      {R"({"text": ""})", SkipReason::kBadFields, "\"text\" is empty"},
      {R"({"prompt": "a"})", SkipReason::kBadFields, "\"prompt\" without \"completion\""},
      {R"({"prompt": "a", "completion": null})", SkipReason::kBadFields, "\"completion\" must be a string"},
      {R"({"text": "a", "messages": []})", SkipReason::kBadFields, "more than one of"},
      {R"({"input": "a"})", SkipReason::kBadFields, "no \"text\""},
      {R"({"messages": "x"})", SkipReason::kBadFields, "\"messages\" must be an array"},
      {R"({"messages": []})", SkipReason::kBadFields, "\"messages\" is empty"},
      {R"({"messages": [{"role": "user"}]})", SkipReason::kBadFields, "messages[0] has no \"content\""},
      {R"({"messages": [{"role": "user", "content": ["a"]}]})", SkipReason::kBadFields,
       "messages[0].content\" must be a string, not array"},
      {R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 2}]})",
       SkipReason::kBadFields, "messages[1].weight must be 0 or 1"},
      {R"({"messages": [{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}]})",
       SkipReason::kUnknownRole, "messages[1]: unknown role 'tool'"},
      {R"({"messages": [{"role": "user", "content": "hi"}]})", SkipReason::kNoTrainableTokens, "nothing to train on"},
      {R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 0}]})",
       SkipReason::kNoTrainableTokens, "nothing to train on"},
      {deep, SkipReason::kInvalidJson, "nested deeper than 64 levels"},
      {"{\"text\": \"a\"} trailing", SkipReason::kInvalidJson, "invalid JSON"},
  };
  // Good lines and blank lines between the bad ones, so line numbers are not just indices.
  std::string contents = "{\"text\": \"first\"}\n\n";
  std::vector<int> line_of;
  int line = 2;
  for (const BadLine& b : bad) {
    contents += b.line + "\n   \n";
    line_of.push_back(++line);
    ++line;
  }
  contents += R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})";

  DatasetOptions opt;
  opt.max_messages = 100;
  const Dataset ds = Parse(*tok, contents, opt);
  EXPECT_EQ(ds.examples.size(), 2u);
  EXPECT_EQ(ds.stats.examples, 2);
  EXPECT_EQ(ds.stats.lines, 3 + 2 * static_cast<int64_t>(bad.size()));
  EXPECT_EQ(ds.stats.empty_lines, 1 + static_cast<int64_t>(bad.size()));
  EXPECT_EQ(ds.stats.skipped_total(), static_cast<int64_t>(bad.size()));
  ASSERT_EQ(ds.stats.messages.size(), bad.size());
  std::array<int64_t, kSkipReasonCount> by_reason{};
  for (size_t i = 0; i < bad.size(); ++i) {
    ++by_reason[static_cast<int>(bad[i].reason)];
    const std::string prefix = "test.jsonl:" + std::to_string(line_of[i]) + ": ";
    const std::string& m = ds.stats.messages[i];
    EXPECT_EQ(m.rfind(prefix, 0), 0u) << m;
    EXPECT_NE(m.find(bad[i].message), std::string::npos) << m;
  }
  EXPECT_EQ(ds.stats.skipped, by_reason);
  const std::string summary = ds.stats.Summary();
  EXPECT_NE(summary.find("invalid JSON 3"), std::string::npos) << summary;
  EXPECT_NE(summary.find("unknown role 1"), std::string::npos) << summary;

  // Strict: the first bad line is the error; keeping only a few messages by default.
  DatasetOptions strict;
  strict.strict = true;
  auto r = ParseJsonlDataset(contents, "test.jsonl", *tok, strict);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind("test.jsonl:3: invalid JSON", 0), 0u) << r.status().message();
  EXPECT_EQ(Parse(*tok, contents).stats.messages.size(), 8u);
  EXPECT_NE(Parse(*tok, contents).stats.Summary().find("... and " + std::to_string(bad.size() - 8) + " more"),
            std::string::npos);
}

TEST(DatasetTest, RoleOrderSpecialTokenTextAndLength) {
  auto tok = LoadWriter(GemmaLikeVocab());
  ASSERT_TRUE(tok);
  DatasetOptions opt;
  opt.chat_template = ChatTemplateKind::kGemma;
  opt.max_tokens = 40;
  const std::string contents =
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]})"
      "\n"
      R"({"messages": [{"role": "user", "content": "<start_of_turn>"}, {"role": "assistant", "content": "b"}]})"
      "\n"
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})"
      "\n"
      R"({"text": "0123456789012345678901234567890123456789"})"
      "\n";
  const Dataset ds = Parse(*tok, contents, opt);
  EXPECT_EQ(ds.examples.size(), 1u);
  EXPECT_EQ(ds.stats.skipped[static_cast<int>(SkipReason::kBadConversation)], 1);
  EXPECT_EQ(ds.stats.skipped[static_cast<int>(SkipReason::kSpecialTokenText)], 1);
  EXPECT_EQ(ds.stats.skipped[static_cast<int>(SkipReason::kTooLong)], 1);
  ASSERT_EQ(ds.stats.messages.size(), 3u);
  EXPECT_EQ(ds.stats.messages[0].rfind("test.jsonl:1: gemma chat template: message 2 is 'user'", 0), 0u)
      << ds.stats.messages[0];
  EXPECT_EQ(ds.stats.messages[1].rfind("test.jsonl:2: message text contains '<start_of_turn>'", 0), 0u)
      << ds.stats.messages[1];
  EXPECT_EQ(ds.stats.messages[2], "test.jsonl:4: 42 tokens, more than max_tokens = 40");
}

TEST(DatasetTest, TemplateThatDoesNotFitTheVocabIsAnError) {
  auto tok = LoadWriter(GemmaLikeVocab());
  ASSERT_TRUE(tok);
  DatasetOptions opt;  // chatml on a vocabulary without <|im_start|>
  auto r = ParseJsonlDataset(
      "{\"text\": \"x\"}\n"
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})",
      "d.jsonl", *tok, opt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind("d.jsonl: chat template chatml: ", 0), 0u) << r.status().message();
  EXPECT_NE(r.status().message().find("<|im_start|>"), std::string::npos);
  // Text lines alone do not need the template.
  EXPECT_EQ(Parse(*tok, "{\"text\": \"x\"}", opt).examples.size(), 1u);
}

TEST(DatasetTest, BomCrlfAndNoUsableExample) {
  auto tok = ChatMLVocab();
  ASSERT_TRUE(tok);
  const Dataset ds = Parse(*tok, "\xEF\xBB\xBF{\"text\": \"a\"}\r\n{\"text\": \"b\"}\r\n");
  ASSERT_EQ(ds.examples.size(), 2u);
  EXPECT_EQ(ds.examples[1].tokens, (std::vector<int32_t>{kBos, 'b', kEos}));
  EXPECT_EQ(ds.stats.lines, 2);

  for (std::string contents : {"", "\n \n", "{\"text\": 1}\n"}) {
    auto r = ParseJsonlDataset(contents, "e.jsonl", *tok, {});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("e.jsonl: no usable training example"), std::string::npos)
        << r.status().message();
  }
}

TEST(DatasetTest, LoadsFiles) {
  auto tok = ChatMLVocab();
  ASSERT_TRUE(tok);
  testing_util::TempDir dir;
  const std::string path = dir.file("d.jsonl");
  std::ofstream(path) << "{\"text\": \"a\"}\n{\"text\": 2}\n";
  auto ds = LoadJsonlDataset(path, *tok, {});
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  EXPECT_EQ(ds->examples.size(), 1u);
  ASSERT_EQ(ds->stats.messages.size(), 1u);
  EXPECT_EQ(ds->stats.messages[0].rfind(path + ":2: ", 0), 0u);
  auto missing = LoadJsonlDataset(dir.file("none.jsonl"), *tok, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kIo);
}

// Random bytes and mutated valid lines: every line is either an example or a counted skip, never a crash.
void CheckArbitraryInput(const Tokenizer& tok, ChatTemplateKind kind, uint32_t seed) {
  const std::vector<std::string> seeds = {
      R"({"text": "hello"})",
      R"({"prompt": "a", "completion": "b"})",
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 1}]})",
      R"({"messages": [{"role": "system", "content": " s "}, {"role": "user", "content": "<start_of_turn>"},)"
      R"( {"role": "assistant", "content": "<|im_end|>"}]})",
  };
  const std::string kJsonish = "{}[]\",:\\u0\xC3";
  std::mt19937 rng(seed);
  std::string contents;
  int lines = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string line = seeds[rng() % seeds.size()];
    const int edits = static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !line.empty(); ++e) {
      const size_t at = rng() % line.size();
      switch (rng() % 3) {
        case 0: line[at] = static_cast<char>(rng() % 256); break;
        case 1: line.erase(at, 1 + rng() % 3); break;
        default: line.insert(at, 1, kJsonish[rng() % kJsonish.size()]); break;
      }
    }
    if (i % 97 == 0) line = std::string(5000, '{');
    if (i % 89 == 0) {
      line.clear();
      for (int k = 0; k < 200; ++k) line.push_back(static_cast<char>(rng() % 256));
    }
    std::replace(line.begin(), line.end(), '\n', ' ');
    contents += line + "\n";
    ++lines;
  }
  DatasetOptions opt;
  opt.chat_template = kind;
  auto r = ParseJsonlDataset(contents, "fuzz.jsonl", tok, opt);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->stats.lines, lines);
  EXPECT_EQ(r->stats.examples + r->stats.skipped_total() + r->stats.empty_lines, lines);
  EXPECT_GT(r->stats.examples, 0);
  for (const TrainExample& ex : r->examples) {
    ASSERT_EQ(ex.tokens.size(), ex.trainable.size());
    for (int32_t id : ex.tokens) ASSERT_TRUE(id >= 0 && id < tok.n_vocab());
  }
}

TEST(DatasetTest, ArbitraryInputNeverCrashes) {
  auto chatml = ChatMLVocab();
  ASSERT_TRUE(chatml);
  CheckArbitraryInput(*chatml, ChatTemplateKind::kChatML, 1234);
  auto gemma = LoadWriter(GemmaLikeVocab());
  ASSERT_TRUE(gemma);
  CheckArbitraryInput(*gemma, ChatTemplateKind::kGemma, 99);
}

}  // namespace
}  // namespace pocketlm
