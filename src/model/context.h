// An inference context over a Model: KV cache, scratch activations, thread pool and the active adapter set.
// One context serves one sequence at a time; make one per concurrent generation.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "lora/adapter.h"
#include "model/model.h"
#include "ops/matmul.h"

namespace pocketlm {

struct ContextParams {
  int n_ctx = 0;      // positions held by the KV cache; 0 = min(training context, 4096)
  int n_threads = 2;  // including the calling thread; ignored when `pool` is given
  int n_batch = 256;  // prompt tokens evaluated together (chunked prefill)
  // Threads shared with other contexts that never evaluate at the same time as this one (the sequences of one
  // scheduler); null: the context starts a pool of n_threads of its own.
  std::shared_ptr<ThreadPool> pool;
};

// Sees the input of every product of the forward pass with one of the model's weight matrices, before the
// product runs (calibration: importance matrices). Called on the evaluating thread.
class MatMulInputObserver {
 public:
  virtual ~MatMulInputObserver() = default;
  // x: (n, w.n_in()) row-major, the rows multiplied with w (w.name is the GGUF tensor name).
  virtual void OnMatMulInput(const TensorView& w, const float* x, int n) = 0;
};

class Context {
 public:
  static Result<std::unique_ptr<Context>> Create(const Model& model, const ContextParams& params);

  // Activates adapters (each checked against the base) for what is evaluated from now on. The KV cache is
  // cleared because it was computed under the previous set.
  Status SetAdapters(const std::vector<ActiveLora>& adapters);

  // Evaluates `tokens` at positions n_past() .. n_past() + n - 1 and appends them to the cache.
  // logits: (n, n_vocab) when all_logits, else (1, n_vocab) for the last token.
  Status Eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits);

  // One decoding step for several sequences at once (continuous batching): evaluates tokens[i] at the next
  // position of seqs[i] (each a context of this model: its own KV cache, position and adapter set) and writes row
  // i of logits: (n, n_vocab). Each weight matrix is read once for all rows, and each row adds the low-rank terms
  // of its own context's adapters. This context's threads and scratch do the work (it may be one of seqs). Row i
  // gets the logits seqs[i]->Eval would give it alone, up to the summation order of the matrix kernels.
  Status DecodeBatch(std::span<Context* const> seqs, std::span<const int32_t> tokens, std::vector<float>* logits);

  void Reset() { n_past_ = 0; }
  // Keeps only the first n positions of the cache (a shared prompt prefix): evaluation continues at position n.
  void TruncateTo(int n) { n_past_ = n < 0 ? 0 : (n < n_past_ ? n : n_past_); }
  int n_past() const { return n_past_; }
  int n_ctx() const { return n_ctx_; }
  // Bytes held by the KV cache (keys and values, every layer, n_ctx positions).
  size_t kv_cache_bytes() const { return 2 * kv_elems_ * sizeof(uint16_t); }
  const Model& model() const { return model_; }
  ThreadPool& pool() { return *pool_; }
  // Until reset to null, `o` sees every weight product's input (the caller keeps it alive).
  void set_matmul_input_observer(MatMulInputObserver* o) { observer_ = o; }

 private:
  Context(const Model& model, const ContextParams& params, int n_ctx);
  // A row of a forward pass: one token of one sequence, at its position in that sequence.
  struct Row {
    Context* seq;
    int32_t token;
    int64_t pos;
  };
  // Consecutive rows of one sequence at consecutive positions: they share attention and adapter terms.
  struct Run {
    Context* seq;
    int row0, n;
    int64_t pos0;
  };
  // Evaluates up to n_batch rows and appends each to its sequence's cache; writes the logits of rows
  // first_logit.. (none when first_logit == n) to logits_out, (n - first_logit, n_vocab).
  void EvalRows(std::span<const Row> rows, int first_logit, float* logits_out);
  Status CheckToken(int32_t t) const;
  // Whether an adapter of any run being evaluated has a term on weight w.
  bool HasLoraTerms(const TensorView& w) const;
  void Linear(const TensorView& w, const float* x, int n, float* y, int64_t y_stride);
  // Projections of one input (q, k, v; gate, up): one parallel region when no adapter touches them, else Linear each.
  void LinearGroup(std::initializer_list<MatMulOutput> outs, const float* x, int n);
  // The LoRA down-projections s * A x of every adapter term on the projections `ws` (which all read `x`: one row
  // per evaluated row), for each run's own adapters, in one parallel region; Linear then adds B (s A x) to each
  // projection's rows inside the projection's own region.
  void PrepareLora(const float* x, std::initializer_list<const TensorView*> ws);
  void Norm(const float* x, const TensorView& w, int n, float* y);

  const Model& model_;
  ContextParams params_;
  int n_ctx_;
  int n_past_ = 0;
  std::shared_ptr<ThreadPool> pool_;
  LoraIndex lora_;

  // KV cache: (n_layer, n_ctx, kv_dim) for keys and values, IEEE binary16 bits (ops/attention.h), kv_elems_ each.
  // Left uninitialized (attention reads only positions already written): the pages become resident as positions
  // are written, so a short conversation in a 4096-position context does not hold the whole cache in memory.
  std::unique_ptr<uint16_t[]> k_cache_, v_cache_;
  size_t kv_elems_ = 0;
  // Scratch for one chunk of up to n_batch tokens.
  std::vector<float> x_;     // (n_batch, n_embd) residual stream
  std::vector<float> h_;     // (n_batch, n_embd) normed input / block output
  std::vector<float> qkv_;   // (n_batch, q_dim + 2 kv_dim)
  std::vector<float> attn_;  // (n_batch, q_dim)
  std::vector<float> ffn_;   // (n_batch, 2 n_ff): gate then up
  // Down-projections prepared by PrepareLora, each used once by the next Linear on its projection.
  struct LoraDown {
    const uint8_t* weight;  // the base projection (key of lora_)
    const float* x;         // the input it was computed from
    const LoraTerm* term;
    int row0, n;    // the rows (one run) the term applies to
    size_t offset;  // s A x: (n, rank) at lora_tmp_ + offset
    bool used;
  };
  std::vector<Run> runs_;  // of the rows being evaluated
  bool any_lora_ = false;  // some run's sequence has adapters
  std::vector<LoraDown> lora_down_;
  std::vector<float> lora_tmp_;       // the prepared down-projections, back to back
  std::vector<uint8_t> act_scratch_;  // activations quantized to 8 bits for the current matmul
  MatMulInputObserver* observer_ = nullptr;
};

}  // namespace pocketlm
