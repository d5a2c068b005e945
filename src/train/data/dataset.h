// JSONL training data -> tokenized examples with a loss mask.
//
// Each non-empty line is one JSON object in one of three shapes:
//   {"text": "..."}                                 language modelling: loss on every token (and the EOS)
//   {"prompt": "...", "completion": "..."}          loss on the completion and the EOS; the two strings are
//                                                   concatenated as they are (put any separator in the data)
//   {"messages": [{"role": "system"|"user"|"assistant", "content": "...", "weight": 0|1}, ...]}
//                                                   OpenAI chat shape, rendered with the chat template; loss on
//                                                   the assistant replies and their end-of-turn token; "weight": 0
//                                                   keeps one reply out of the loss (OpenAI's fine-tuning format)
// Other fields are ignored. BOS is prepended when the vocabulary says add_bos. No text is ever parsed for special
// tokens: "<|im_end|>" in a message is text, and text the vocabulary would still read as a conversation-control
// token is refused (see TokenizeChat).
//
// A line that cannot be used is reported as "FILE:LINE: problem". By default it is skipped and counted (the first
// few messages are kept for a summary); with `strict` the first one is the error. Nothing in the input can crash
// the reader: JSON errors, invalid UTF-8, wrong types and nesting depth are all per-line problems.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace pocketlm {

// One training example. trainable[i] = 1 means tokens[i] is a prediction target (predicted at position i - 1);
// trainable[0] is always 0 since nothing in the example comes before it.
struct TrainExample {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> trainable;  // same length as tokens
};

// Why a line was skipped.
enum class SkipReason : int {
  kInvalidUtf8,        // the line is not valid UTF-8
  kInvalidJson,        // not JSON, or nested deeper than 64 levels
  kBadFields,          // not an object, missing or ambiguous fields, wrong types, empty text
  kUnknownRole,        // a message role other than system / user / assistant
  kBadConversation,    // an order of roles the chat template refuses (llama2 / gemma alternation)
  kSpecialTokenText,   // message text the vocabulary would read as a control token
  kNoTrainableTokens,  // nothing to learn (e.g. a conversation without an assistant reply)
  kTooLong,            // more than DatasetOptions::max_tokens tokens
  kCount
};
constexpr int kSkipReasonCount = static_cast<int>(SkipReason::kCount);
std::string_view SkipReasonName(SkipReason reason);  // "invalid UTF-8", "invalid JSON", ...

struct DatasetOptions {
  ChatTemplateKind chat_template = ChatTemplateKind::kChatML;  // renders "messages" lines
  bool train_on_prompt = false;  // loss on every token (prompts, system and user turns, template markers) too
  bool add_eos = true;           // "text" and "prompt"/"completion" lines end with EOS, so the model learns to stop
  int32_t max_tokens = 0;        // > 0: skip longer examples (kTooLong); 0: keep them (packing truncates them)
  bool strict = false;           // the first unusable line is the error
  int32_t max_messages = 8;      // how many skip messages DatasetStats keeps
};

struct DatasetStats {
  int64_t lines = 0;                                // lines read, empty ones included
  int64_t empty_lines = 0;                          // blank or whitespace-only, ignored
  int64_t examples = 0;                             // kept
  std::array<int64_t, kSkipReasonCount> skipped{};  // by SkipReason
  int64_t tokens = 0;                               // in kept examples
  int64_t trainable_tokens = 0;                     // in kept examples
  std::vector<std::string> messages;                // the first max_messages "FILE:LINE: problem"

  int64_t skipped_total() const;
  std::string Summary() const;  // a few lines for the log: counts, skips by reason, the kept messages
};

struct Dataset {
  std::vector<TrainExample> examples;  // in file order
  DatasetStats stats;
};

// Reads a JSONL file. Errors: the file cannot be read; with `strict`, the first bad line; a chat template that
// does not fit the vocabulary (its special tokens are missing); no usable example at all.
Result<Dataset> LoadJsonlDataset(const std::string& path, const Tokenizer& tokenizer, const DatasetOptions& options);
// Same, for contents already in memory; `name` stands for FILE in messages.
Result<Dataset> ParseJsonlDataset(std::string_view contents, std::string_view name, const Tokenizer& tokenizer,
                                  const DatasetOptions& options);

}  // namespace pocketlm
