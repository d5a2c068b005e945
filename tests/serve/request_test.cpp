// Request parsing and validation: every malformed or unsupported body is a 400 naming the field, never a throw.
#include "serve/request.h"

#include <gtest/gtest.h>

namespace pocketlm::serve {
namespace {

CompletionRequest Ok(std::string_view body, Endpoint ep = Endpoint::kChat) {
  ParsedRequest p = ParseCompletionRequest(body, ep);
  if (auto* e = std::get_if<ApiError>(&p)) ADD_FAILURE() << body << " -> " << e->message;
  return std::holds_alternative<CompletionRequest>(p) ? std::get<CompletionRequest>(p) : CompletionRequest{};
}

ApiError Err(std::string_view body, Endpoint ep = Endpoint::kChat) {
  ParsedRequest p = ParseCompletionRequest(body, ep);
  if (!std::holds_alternative<ApiError>(p)) {
    ADD_FAILURE() << body << " was accepted";
    return {};
  }
  return std::get<ApiError>(p);
}

TEST(ServeRequest, ChatWithEveryField) {
  const CompletionRequest r = Ok(R"({"model": "coding", "messages": [
      {"role": "system", "content": "be brief"},
      {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]},
      {"role": "assistant", "content": null}, {"role": "developer", "content": "x"}],
    "max_completion_tokens": 7, "max_tokens": 99, "temperature": 0, "top_p": 0.5, "top_k": 3, "min_p": 0.1,
    "seed": -5, "stop": ["END", ""], "n": 1, "stream": true, "stream_options": {"include_usage": true},
    "presence_penalty": 1.5, "frequency_penalty": -1, "user": "u", "lora": [{"name": "a", "scale": 0.5},
    {"name": "b"}]})");
  EXPECT_EQ(r.model, "coding");
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, ChatRole::kSystem);
  EXPECT_EQ(r.messages[1].content, "hi there");
  EXPECT_EQ(r.messages[2].content, "");
  EXPECT_EQ(r.messages[3].role, ChatRole::kSystem);  // developer = system
  EXPECT_EQ(r.max_tokens, 7);                        // max_completion_tokens wins
  EXPECT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_EQ(r.sampling.top_p, 0.5f);
  EXPECT_EQ(r.sampling.top_k, 3);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.1f);
  EXPECT_TRUE(r.has_seed);
  EXPECT_EQ(r.sampling.seed, static_cast<uint64_t>(int64_t{-5}));
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  ASSERT_EQ(r.lora.size(), 2u);
  EXPECT_EQ(r.lora[0].name, "a");
  EXPECT_EQ(r.lora[0].scale, 0.5f);
  EXPECT_EQ(r.lora[1].scale, 1.0f);
}

TEST(ServeRequest, DefaultsAreTheEngines) {
  const CompletionRequest r = Ok(R"({"prompt": ["once"]})", Endpoint::kCompletion);
  EXPECT_EQ(r.prompt, "once");
  EXPECT_TRUE(r.model.empty());
  EXPECT_FALSE(r.max_tokens.has_value());
  EXPECT_FALSE(r.has_seed);
  EXPECT_EQ(r.sampling.temperature, SamplingParams{}.temperature);
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(Ok(R"({"prompt": "x", "max_tokens": null, "stop": "S"})", Endpoint::kCompletion).stop,
            std::vector<std::string>{"S"});
}

TEST(ServeRequest, RefusesWithTheFieldNamed) {
  struct Case {
    const char* body;
    const char* param;
  };
  const Case cases[] = {
      {R"({"messages": []})", "messages"},
      {R"({"messages": "hi"})", "messages"},
      {R"({"messages": [{"role": "tool", "content": "x"}]})", "messages[0].role"},
      {R"({"messages": [{"role": "user"}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", "messages[0].content[0]"},
      {R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": "x"}], "model": 3})", "model"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 99999999999})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})", "temperature"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": 3})", "temperature"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_p": 0})", "top_p"},
      {R"({"messages": [{"role": "user", "content": "x"}], "min_p": 1})", "min_p"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_k": -1})", "top_k"},
      {R"({"messages": [{"role": "user", "content": "x"}], "n": 2})", "n"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stream": "yes"})", "stream"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop": ["a", "b", "c", "d", "e"]})", "stop"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop": [1]})", "stop"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true})", "logprobs"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})", "tools"},
      {R"({"messages": [{"role": "user", "content": "x"}], "lora": {"name": "a"}})", "lora"},
      {R"({"messages": [{"role": "user", "content": "x"}], "lora": [{"scale": 1}]})", "lora[0].name"},
      {R"({"messages": [{"role": "user", "content": "x"}], "lora": [{"name": "a", "scale": "1"}]})", "lora[0].scale"},
      {R"({"messages": [{"role": "user", "content": "x"}], "presence_penalty": 5})", "presence_penalty"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stream_options": 1})", "stream_options"},
  };
  for (const Case& c : cases) {
    const ApiError e = Err(c.body);
    EXPECT_EQ(e.http_status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body << ": " << e.message;
    EXPECT_FALSE(e.message.empty());
  }
  EXPECT_EQ(Err(R"({"prompt": 5})", Endpoint::kCompletion).param, "prompt");
  EXPECT_EQ(Err(R"({"prompt": ["a", "b"]})", Endpoint::kCompletion).param, "prompt");
}

TEST(ServeRequest, MalformedBodiesNeverThrow) {
  for (const char* body : {"", "{", "[]", "null", "42", "\"s\"", "{\"messages\": [1, 2]}", "\xff\xfe", "{\"a\":}"}) {
    EXPECT_EQ(Err(body).http_status, 400) << body;
  }
}

}  // namespace
}  // namespace pocketlm::serve
