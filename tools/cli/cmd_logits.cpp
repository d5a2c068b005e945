// Writes the conformance format of shared/golden/README.md: int32 n_tokens, int32 n_vocab, int32 tokens[n],
// float32 logits[n][n_vocab], int32 n_gen, int32 gen[n_gen] (greedy continuation). Little-endian.
#include <bit>

#include "base/atomic_file.h"
#include "model/sampler.h"
#include "options.h"

namespace pocketlm::cli {

static_assert(std::endian::native == std::endian::little, "the logits format is little-endian");

int LogitsCommand(const LogitsOptions& o) {
  const std::string& prompt_file = o.prompt_file;
  const std::string& out_path = o.out_path;
  const int n_gen = o.n_gen;
  std::string prompt;
  if (Status st = ReadTextFile(prompt_file, &prompt); !st.ok()) return Fail(st);
  auto lm = LoadModel(o.model);
  if (!lm.ok()) return Fail(lm.status());
  auto ids = lm->model->tokenizer().Encode(prompt, /*add_special=*/true, /*parse_special=*/true);
  if (!ids.ok()) return Fail(ids.status());
  const int32_t n_vocab = lm->model->config().n_vocab;

  std::vector<float> logits;
  if (Status st = lm->ctx->Eval(*ids, /*all_logits=*/true, &logits); !st.ok()) return Fail(st);
  std::vector<int32_t> gen;
  std::vector<float> step(logits.end() - n_vocab, logits.end());
  for (int i = 0; i < n_gen; ++i) {
    const int32_t next = ArgMax(step);
    gen.push_back(next);
    if (i + 1 == n_gen) break;
    if (Status st = lm->ctx->Eval(std::span<const int32_t>(&next, 1), false, &step); !st.ok()) return Fail(st);
  }

  auto w = AtomicFileWriter::Create(out_path);
  if (!w.ok()) return Fail(w.status());
  const auto n_tokens = static_cast<int32_t>(ids->size());
  const auto n_g = static_cast<int32_t>(gen.size());
  Status st = w->Write(&n_tokens, 4);
  if (st.ok()) st = w->Write(&n_vocab, 4);
  if (st.ok()) st = w->Write(ids->data(), ids->size() * 4);
  if (st.ok()) st = w->Write(logits.data(), logits.size() * 4);
  if (st.ok()) st = w->Write(&n_g, 4);
  if (st.ok()) st = w->Write(gen.data(), gen.size() * 4);
  if (st.ok()) st = w->Commit();
  if (!st.ok()) return Fail(st);
  std::fprintf(stderr, "wrote %s: %d prompt tokens x %d logits, %d generated\n", out_path.c_str(), n_tokens, n_vocab,
               n_g);
  return 0;
}

}  // namespace pocketlm::cli
