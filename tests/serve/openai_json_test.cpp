// Response bodies: the fields the OpenAI SDKs read, in the shapes of the API reference.
#include "serve/openai_json.h"

#include <gtest/gtest.h>

#include "model/stop_matcher.h"
#include "serve/api_error.h"

namespace pocketlm::serve {
namespace {

using nlohmann::json;

ResponseMeta Meta(Endpoint ep) {
  return ResponseMeta{ep, ep == Endpoint::kChat ? "chatcmpl-1" : "cmpl-1", 1700000000, "base"};
}

TEST(ServeJson, ChatCompletion) {
  const json j = CompletionJson(Meta(Endpoint::kChat), "Hello", FinishReason::kLength, Usage{5, 3});
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["id"], "chatcmpl-1");
  EXPECT_EQ(j["created"], 1700000000);
  EXPECT_EQ(j["model"], "base");
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["index"], 0);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Hello");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"], (json{{"prompt_tokens", 5},
                              {"completion_tokens", 3},
                              {"total_tokens", 8},
                              {"prompt_tokens_details", {{"cached_tokens", 0}}}}));
}

TEST(ServeJson, TextCompletion) {
  const json j = CompletionJson(Meta(Endpoint::kCompletion), " world", FinishReason::kStop, Usage{2, 1});
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], " world");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_FALSE(j["choices"][0].contains("message"));
  EXPECT_EQ(j["usage"]["total_tokens"], 3);
}

TEST(ServeJson, ChatChunks) {
  const ResponseMeta m = Meta(Endpoint::kChat);
  const json first = RoleChunkJson(m), text = TextChunkJson(m, "Hi"), last = FinishChunkJson(m, FinishReason::kStop);
  for (const json& c : {first, text, last}) {
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    EXPECT_EQ(c["id"], "chatcmpl-1");
    EXPECT_EQ(c["choices"][0]["index"], 0);
  }
  EXPECT_EQ(first["choices"][0]["delta"], (json{{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(text["choices"][0]["delta"], (json{{"content", "Hi"}}));
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  const json usage = UsageChunkJson(m, Usage{4, 2});
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 6);
}

TEST(ServeJson, CompletionChunks) {
  const json c = TextChunkJson(Meta(Endpoint::kCompletion), "ab");
  EXPECT_EQ(c["object"], "text_completion");
  EXPECT_EQ(c["choices"][0]["text"], "ab");
  EXPECT_FALSE(c["choices"][0].contains("delta"));
}

TEST(ServeJson, SseFramingAndInvalidUtf8) {
  EXPECT_EQ(SseData(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
  // A model can emit any bytes; they must not throw while serializing.
  const std::string s = Dump(json{{"t", std::string("a\xff"
                                                    "b")}});
  EXPECT_NE(s.find("a\xef\xbf\xbd"
                   "b"),
            std::string::npos);
}

TEST(ServeJson, Models) {
  const json j = ModelListJson({{"base", ""}, {"coding", "base"}}, 7);
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["data"][0], (json{{"id", "base"}, {"object", "model"}, {"created", 7}, {"owned_by", "pocketlm"}}));
  EXPECT_EQ(j["data"][1]["parent"], "base");
}

TEST(ServeJson, ErrorShape) {
  const json j = NotFoundError("no such model", "model", "model_not_found").ToJson();
  EXPECT_EQ(j, (json{{"error",
                      {{"message", "no such model"},
                       {"type", "invalid_request_error"},
                       {"param", "model"},
                       {"code", "model_not_found"}}}}));
  const json k = BadRequest("bad").ToJson();
  EXPECT_TRUE(k["error"]["param"].is_null());
  EXPECT_TRUE(k["error"]["code"].is_null());
}

// Every code has its HTTP status, whether the error comes before a job starts or from the scheduler after.
TEST(ServeJson, ErrorFromStatusMapsEveryCode) {
  struct Case {
    Status s;
    int http_status;
    const char* type;
    const char* code;
  };
  const Case cases[] = {
      {InvalidArgument("x"), 400, "invalid_request_error", ""},
      {NotFound("x"), 404, "invalid_request_error", ""},
      {Corrupt("x"), 400, "invalid_request_error", ""},
      {Unsupported("x"), 400, "invalid_request_error", ""},
      {OutOfRange("x"), 400, "invalid_request_error", "context_length_exceeded"},
      {Unavailable("x"), 503, "server_error", "unavailable"},
      {IoError("x"), 500, "server_error", ""},
      {Internal("x"), 500, "server_error", "internal_error"},
      {Status::Ok(), 500, "server_error", "internal_error"},
  };
  for (const Case& c : cases) {
    const ApiError e = ErrorFromStatus(c.s, "prompt");
    EXPECT_EQ(e.http_status, c.http_status) << static_cast<int>(c.s.code());
    EXPECT_EQ(e.type, c.type) << static_cast<int>(c.s.code());
    EXPECT_EQ(e.code, c.code) << static_cast<int>(c.s.code());
    EXPECT_EQ(e.param, "prompt");
    if (!c.s.ok()) {
      EXPECT_EQ(e.message, "x");
    }
  }
}

TEST(ServeStop, HoldsBackPrefixesAndCutsAtTheMatch) {
  StopMatcher m({"END", "\n\n"});
  EXPECT_EQ(m.Push("Hello E"), "Hello ");  // "E" may start END
  EXPECT_EQ(m.Push("N"), "");
  EXPECT_EQ(m.Push("X more\n"), "ENX more");
  EXPECT_EQ(m.Push("\nafter"), "");  // "\n\n" completes
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.Push("ignored"), "");
  EXPECT_EQ(m.Flush(), "");

  StopMatcher tail({"STOP"});
  EXPECT_EQ(tail.Push("abcST"), "abc");
  EXPECT_EQ(tail.Flush(), "ST");  // generation ended without completing it
  StopMatcher none({});
  EXPECT_EQ(none.Push("x"), "x");
  StopMatcher inside({"lo w"});
  EXPECT_EQ(inside.Push("hello world"), "hel");
  EXPECT_TRUE(inside.stopped());
}

}  // namespace
}  // namespace pocketlm::serve
