// Sequential packing after a seeded shuffle (see packing.h).
#include "train/data/packing.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <string>

namespace pocketlm {
namespace {

// SplitMix64 (Steele, Lea, Flood 2014): a tiny generator with a fixed, documented output, unlike the standard
// library's distributions, whose results differ between implementations.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound), bound > 0: rejection of the low values that would make the modulo biased.
  uint64_t Below(uint64_t bound) {
    const uint64_t threshold = (0 - bound) % bound;
    for (;;) {
      const uint64_t r = Next();
      if (r >= threshold) return r % bound;
    }
  }

 private:
  uint64_t state_;
};

}  // namespace

Result<SequencePacker> SequencePacker::Create(std::span<const TrainExample> examples, int32_t seq_len, uint64_t seed,
                                              int32_t pad_id) {
  if (examples.empty()) return InvalidArgument("no training examples to pack");
  if (examples.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return OutOfRange("more than 2^31 - 1 training examples");
  }
  if (seq_len < 2) return InvalidArgument("sequence length " + std::to_string(seq_len) + " is below 2");
  if (pad_id < 0) return InvalidArgument("padding token id " + std::to_string(pad_id) + " is negative");
  SequencePacker p;
  p.examples_ = examples;
  p.seq_len_ = seq_len;
  p.pad_id_ = pad_id;
  for (size_t i = 0; i < examples.size(); ++i) {
    const TrainExample& ex = examples[i];
    if (ex.trainable.size() != ex.tokens.size()) {
      return InvalidArgument("training example " + std::to_string(i) + " has " + std::to_string(ex.tokens.size()) +
                             " tokens but a mask of " + std::to_string(ex.trainable.size()));
    }
    if (ex.tokens.size() > static_cast<size_t>(seq_len)) {
      ++p.truncated_;
      p.truncated_tokens_ += static_cast<int64_t>(ex.tokens.size()) - seq_len;
    }
  }
  PLM_RETURN_IF_ERROR(p.Seek({seed, 0, 0}));
  return p;
}

std::vector<int32_t> SequencePacker::Order(int64_t epoch) const {
  std::vector<int32_t> order(examples_.size());
  std::iota(order.begin(), order.end(), 0);
  SplitMix64 rng(cursor_.seed ^ (static_cast<uint64_t>(epoch) * 0xD1B54A32D192ED03ull));
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.Below(i)]);  // Fisher-Yates
  return order;
}

Status SequencePacker::Seek(const PackCursor& cursor) {
  if (cursor.epoch < 0 || cursor.index < 0 || cursor.index >= static_cast<int64_t>(examples_.size())) {
    return OutOfRange("packing cursor (epoch " + std::to_string(cursor.epoch) + ", example " +
                      std::to_string(cursor.index) + ") is outside a dataset of " + std::to_string(examples_.size()) +
                      " examples; was the checkpoint made with this data?");
  }
  const bool reshuffle = order_.empty() || cursor.seed != cursor_.seed || cursor.epoch != cursor_.epoch;
  cursor_ = cursor;
  if (reshuffle) order_ = Order(cursor_.epoch);
  return Status::Ok();
}

void SequencePacker::Next(PackedSequence* out) {
  const size_t n = static_cast<size_t>(seq_len_);
  out->tokens.assign(n, pad_id_);
  out->targets.assign(n, -1);
  out->seg_start.assign(n, 0);
  out->pos.assign(n, 0);
  out->examples.clear();
  int32_t used = 0;
  while (cursor_.index < static_cast<int64_t>(order_.size())) {
    const int32_t id = order_[cursor_.index];
    const TrainExample& ex = examples_[id];
    const int32_t len = static_cast<int32_t>(std::min(ex.tokens.size(), n));
    if (used > 0 && used + len > seq_len_) break;
    for (int32_t j = 0; j < len; ++j) {
      out->tokens[used + j] = ex.tokens[j];
      out->seg_start[used + j] = used;
      out->pos[used + j] = j;
      if (j + 1 < len && ex.trainable[j + 1]) out->targets[used + j] = ex.tokens[j + 1];
    }
    out->examples.push_back(id);
    used += len;
    ++cursor_.index;
  }
  out->n_tokens = used;
  for (int32_t t = used; t < seq_len_; ++t) {  // the padding run is one segment of its own
    out->seg_start[t] = used;
    out->pos[t] = t - used;
  }
  if (cursor_.index == static_cast<int64_t>(order_.size())) {
    ++cursor_.epoch;
    cursor_.index = 0;
    order_ = Order(cursor_.epoch);
  }
}

int64_t SequencePacker::SequencesInEpoch(int64_t epoch) const {
  const std::vector<int32_t> order = Order(epoch);
  int64_t sequences = 0;
  int64_t used = 0;
  for (int32_t id : order) {
    const int64_t len = std::min<int64_t>(static_cast<int64_t>(examples_[id].tokens.size()), seq_len_);
    if (sequences == 0 || (used > 0 && used + len > seq_len_)) {
      ++sequences;
      used = 0;
    }
    used += len;
  }
  return sequences;
}

}  // namespace pocketlm
