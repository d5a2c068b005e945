// Internal to plm_train_data: one JSONL line -> one TrainExample, or why the line cannot be used.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "train/data/dataset.h"

namespace pocketlm::data_internal {

struct LineError {
  SkipReason reason = SkipReason::kBadFields;
  std::string what;    // without the "FILE:LINE: " prefix
  bool fatal = false;  // a problem of the configuration, not of this line (chat template vs vocabulary)
};

class ExampleBuilder {
 public:
  ExampleBuilder(const Tokenizer& tokenizer, const DatasetOptions& options) : tok_(tokenizer), opt_(options) {}

  // `line` without its line terminator, not blank.
  std::variant<TrainExample, LineError> Build(std::string_view line);

 private:
  std::variant<TrainExample, LineError> FromText(std::string_view text);
  std::variant<TrainExample, LineError> FromPromptCompletion(std::string_view prompt, std::string_view completion);
  std::variant<TrainExample, LineError> FromMessages(std::span<const ChatMessage> messages);
  std::variant<TrainExample, LineError> Finish(TokenizedChat chat, bool eos);
  LineError CheckTemplateOnce();

  const Tokenizer& tok_;
  const DatasetOptions& opt_;
  bool template_checked_ = false;
};

}  // namespace pocketlm::data_internal
