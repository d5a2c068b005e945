// ChooseChatFormat for a loaded model: its tokenizer and its tokenizer.chat_template metadata.
#pragma once

#include <string_view>

#include "model/model.h"
#include "tokenizer/chat_format.h"

namespace pocketlm {

Result<ChatFormat> ChooseChatFormat(const Model& model, std::string_view name, MissingMarkers missing);

}  // namespace pocketlm
