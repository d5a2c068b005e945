// Packing examples into fixed-length training sequences, epoch after epoch, resumable from a few integers.
//
// Each epoch visits every example once, in an order shuffled from (seed, epoch). Examples are packed
// sequentially in that order: an example goes into the current sequence if it fits in the space left, otherwise
// the sequence is closed (padded) and the example starts the next one. So several short examples share a
// sequence, an example is never split across two sequences, and the waste is at most one example's length per
// sequence. An example longer than seq_len is truncated to its first seq_len tokens (counted in truncated();
// its end, possibly the end-of-turn token, is then not learned: drop such examples instead with
// DatasetOptions::max_tokens = seq_len). The last sequence of an epoch is padded; the next starts a new epoch.
//
// Within a sequence, attention must stay inside each example (document masking): seg_start and pos say where.
// The shuffle uses our own generator and Fisher-Yates, so a seed gives the same order on every platform.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"
#include "train/data/dataset.h"

namespace pocketlm {

struct PackedSequence {
  std::vector<int32_t> tokens;     // (seq_len) input ids; padding positions hold pad_id
  std::vector<int32_t> targets;    // (seq_len) id to predict at t: tokens[t + 1] when it is trainable and in the
                                   //           same example, else -1 (padding, example ends, masked tokens)
  std::vector<int32_t> seg_start;  // (seq_len) index of the first token of t's example (the padding run counts
                                   //           as one segment); attend from t to s only if seg_start equal, s <= t
  std::vector<int32_t> pos;        // (seq_len) position of t within its example, for RoPE
  std::vector<int32_t> examples;   // indices into the example list, in packing order
  int32_t n_tokens = 0;            // tokens before the padding
};

// Where packing stands: enough to continue exactly there after a restart (store it in the checkpoint).
struct PackCursor {
  uint64_t seed = 0;
  int64_t epoch = 0;  // epoch of the next sequence
  int64_t index = 0;  // position in that epoch's shuffled order of the next example to pack
};

class SequencePacker {
 public:
  // `examples` must outlive the packer. Errors: no examples, seq_len < 2, pad_id < 0, an example whose
  // trainable mask is not as long as its tokens.
  static Result<SequencePacker> Create(std::span<const TrainExample> examples, int32_t seq_len, uint64_t seed,
                                       int32_t pad_id = 0);

  // Fills `out` (its buffers are reused) with the next sequence and advances the cursor.
  void Next(PackedSequence* out);

  const PackCursor& cursor() const { return cursor_; }
  // Continues from a cursor saved earlier (with the same examples and seq_len). Error: index out of range.
  Status Seek(const PackCursor& cursor);

  // Sequences in epoch `epoch` (they vary slightly with the shuffle), for schedules and progress bars.
  int64_t SequencesInEpoch(int64_t epoch) const;
  // Examples longer than seq_len (truncated each time they are packed) and the tokens cut from them per epoch.
  int64_t truncated() const { return truncated_; }
  int64_t truncated_tokens() const { return truncated_tokens_; }
  int32_t seq_len() const { return seq_len_; }

 private:
  SequencePacker() = default;
  std::vector<int32_t> Order(int64_t epoch) const;  // the shuffled example indices of an epoch

  std::span<const TrainExample> examples_;
  int32_t seq_len_ = 0;
  int32_t pad_id_ = 0;
  PackCursor cursor_;
  std::vector<int32_t> order_;  // Order(cursor_.epoch)
  int64_t truncated_ = 0, truncated_tokens_ = 0;
};

}  // namespace pocketlm
