// Stop sequences over streamed text. OpenAI: "Up to 4 sequences where the API will stop generating further
// tokens. The returned text will not contain the stop sequence." (api-reference/chat/create, `stop`). Text that
// could be the start of a stop sequence is held back until the next piece decides it, so a stream never shows a
// prefix of a stop sequence that later completes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pocketlm {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  // Appends `piece`; returns the text that is now safe to emit. After a stop sequence is found, stopped() is
  // true and the text before it has been returned; later pushes return nothing.
  std::string Push(std::string_view piece);
  // The held-back tail, at the end of generation (it did not become a stop sequence).
  std::string Flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace pocketlm
