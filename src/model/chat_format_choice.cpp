#include "model/chat_format_choice.h"

#include <optional>
#include <string>

namespace pocketlm {

Result<ChatFormat> ChooseChatFormat(const Model& model, std::string_view name, MissingMarkers missing) {
  auto jinja = model.file().GetString("tokenizer.chat_template");
  std::optional<std::string_view> metadata;
  if (jinja.ok()) metadata = jinja.value();
  return ChooseChatFormat(model.tokenizer(), metadata, name, missing);
}

}  // namespace pocketlm
