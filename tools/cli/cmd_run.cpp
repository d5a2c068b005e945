#include <cstdio>

#include "model/generate.h"
#include "options.h"

namespace pocketlm::cli {

int RunCommand(const ModelOptions& m, const SamplingOptions& s, const std::string& prompt_text,
               const std::string& prompt_file, int n_predict, bool no_bos) {
  if (!prompt_text.empty() && !prompt_file.empty()) return Fail(InvalidArgument("give either -p or -f, not both"));
  std::string prompt = prompt_text;
  if (!prompt_file.empty()) {
    if (Status st = ReadTextFile(prompt_file, &prompt); !st.ok()) return Fail(st);
  }
  if (Status st = s.p.Validate(); !st.ok()) return Fail(st);
  auto lm = LoadModel(m);
  if (!lm.ok()) return Fail(lm.status());
  const Tokenizer& tok = lm->model->tokenizer();
  auto ids = tok.Encode(prompt, !no_bos, /*parse_special=*/true);
  if (!ids.ok()) return Fail(ids.status());

  GenerateParams gp;
  gp.n_predict = n_predict;
  gp.sampling = s.p;
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  std::fflush(stdout);
  auto stats = Generate(*lm->ctx, *ids, gp, [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
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
