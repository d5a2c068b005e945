#include <cstdio>

#include "model/generate.h"
#include "options.h"

namespace pocketlm::cli {

int RunCommand(const RunOptions& r) {
  const ModelOptions& m = r.model;
  const SamplingOptions& s = r.sampling;
  if (!r.prompt.empty() && !r.prompt_file.empty()) return Fail(InvalidArgument("give either -p or -f, not both"));
  if (!r.chat && !r.chat_template.empty()) return Fail(InvalidArgument("--chat-template needs --chat"));
  std::string prompt = r.prompt;
  if (!r.prompt_file.empty()) {
    if (Status st = ReadTextFile(r.prompt_file, &prompt); !st.ok()) return Fail(st);
  }
  if (Status st = s.p.Validate(); !st.ok()) return Fail(st);
  auto lm = LoadModel(m);
  if (!lm.ok()) return Fail(lm.status());
  const Tokenizer& tok = lm->model->tokenizer();
  std::vector<int32_t> ids;
  std::string stop_text;  // a chat template's end of turn, when the vocabulary spells it as text
  if (r.chat) {
    // One user turn and the header of the assistant's: the reply streams alone, and generation stops at the
    // template's end-of-turn token (Generate stops at end-of-generation tokens).
    std::string note;
    auto format = ChooseChatTemplate(*lm->model, r.chat_template, MissingMarkers::kAsText, &note);
    if (!format.ok()) return Fail(format.status());
    if (!note.empty()) std::fprintf(stderr, "note: %s\n", note.c_str());
    stop_text = format.value().end_of_turn_text;
    const ChatMessage user{ChatRole::kUser, prompt, true};
    auto chat = RenderAndTokenizeChat(tok, format.value(), std::span<const ChatMessage>(&user, 1),
                                      /*add_generation_prompt=*/true);
    if (!chat.ok()) return Fail(chat.status());
    ids = std::move(chat.value().tokens);
  } else {
    auto encoded = tok.Encode(prompt, !r.no_bos, /*parse_special=*/true);
    if (!encoded.ok()) return Fail(encoded.status());
    ids = std::move(encoded).value();
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    std::fflush(stdout);
  }

  GenerateParams gp;
  gp.n_predict = r.n_predict;
  gp.sampling = s.p;
  auto write = [](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  };
  if (!stop_text.empty()) gp.stop.push_back(stop_text);
  auto stats = Generate(*lm->ctx, ids, gp, [&](std::string_view piece) {
    write(piece);
    return true;
  });
  std::fputc('\n', stdout);
  if (!stats.ok()) return Fail(stats.status());
  const auto& st = *stats;
  std::fprintf(stderr, "\nprompt: %d tokens, %.1f tokens/s | generated: %d tokens, %.1f tokens/s\n", st.n_prompt,
               st.prefill_seconds > 0 ? st.n_prompt / st.prefill_seconds : 0.0, st.n_generated,
               st.decode_seconds > 0 ? st.n_generated / st.decode_seconds : 0.0);
  return 0;
}

}  // namespace pocketlm::cli
