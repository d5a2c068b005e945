// Random numbers for training that are identical on every platform and compiler (the standard library's
// distributions are not), so a seed and thread count reproduce a run exactly.
#pragma once

#include <cstdint>

namespace pocketlm {

// SplitMix64 finalizer (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number generators").
inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Sequential generator: state advances by the golden-ratio increment, output is the mixed state.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() { return Mix64(state_ += 0x9e3779b97f4a7c15ull); }
  // Uniform in [0, 1) with 24 bits, exactly representable as float.
  float NextFloat() { return static_cast<float>(Next() >> 40) * (1.0f / 16777216.0f); }
  uint64_t state() const { return state_; }
  void set_state(uint64_t s) { state_ = s; }

 private:
  uint64_t state_;
};

// Counter-based uniform in [0, 1): a pure function of (key, counter), so a dropout mask can be regenerated
// when a layer is recomputed for the backward pass instead of being stored.
inline float HashUniform(uint64_t key, uint64_t counter) {
  return static_cast<float>(Mix64(key ^ Mix64(counter + 0x9e3779b97f4a7c15ull)) >> 40) * (1.0f / 16777216.0f);
}

}  // namespace pocketlm
