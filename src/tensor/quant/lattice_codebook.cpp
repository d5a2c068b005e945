// Lattice codebooks and the shared steps of the IQ1/IQ2/IQ3 quantizers (see lattice_codebook.h). The grids come from
// iq_grids.h, read as levels; the neighbour lists are ggml's (iq2xs_init_impl, iq3xs_init_impl), computed without
// its qsort of (distance, index) pairs: those are all distinct, so listing the entries of each of the nwant smallest
// distances in turn, each in index order, gives the same order.
#include "tensor/quant/lattice_codebook.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cfloat>
#include <climits>
#include <cmath>
#include <limits>
#include <mutex>
#include <optional>

#include "tensor/half.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/iq_grids.h"
#include "tensor/quant/quant_math.h"

namespace pocketlm::quant::detail {

namespace {

// Map value of a key that is neither on the grid nor given neighbours (2-bit keys using level 3).
constexpr int32_t kUnlisted = INT32_MIN;

// How a grid of iq_grids.h turns into levels: entry j's byte k is levels[l] for level l.
struct GridSource {
  int size;
  int group;
  int bits;
  int nwant;  // neighbours: the entries at the nwant smallest distinct distances
  std::vector<uint8_t> levels;
  uint64_t (*entry)(int j);
};

GridSource Source(LatticeGrid grid) {
  const std::vector<uint8_t> iq2 = {0x08, 0x19, 0x2b};
  const std::vector<uint8_t> iq3xxs = {4, 12, 20, 28, 36, 44, 52, 62};
  const std::vector<uint8_t> iq3s = {1, 3, 5, 7, 9, 11, 13, 15};
  switch (grid) {
    case LatticeGrid::kIQ2XXS: return {256, 8, 2, 2, iq2, [](int j) { return kIQ2XXSGrid[j]; }};
    case LatticeGrid::kIQ2XS: return {512, 8, 2, 2, iq2, [](int j) { return kIQ2XSGrid[j]; }};
    case LatticeGrid::kIQ2S: return {1024, 8, 2, 1, iq2, [](int j) { return kIQ2SGrid[j]; }};
    case LatticeGrid::kIQ1S: return {2048, 8, 2, 3, {0xff, 0x00, 0x01}, [](int j) { return kIQ1SGrid[j]; }};
    case LatticeGrid::kIQ3XXS:
      return {256, 4, 3, 2, iq3xxs, [](int j) { return static_cast<uint64_t>(kIQ3XXSGrid[j]); }};
    case LatticeGrid::kIQ3S: return {512, 4, 3, 3, iq3s, [](int j) { return static_cast<uint64_t>(kIQ3SGrid[j]); }};
  }
  return {};
}

// ORs the 128-bit mask m, shifted left by `shift` (< 128), into the 256-bit mask out.
void OrShifted(const std::array<uint64_t, 2>& m, int shift, std::array<uint64_t, 4>* out) {
  const int word = shift / 64;
  const int bit = shift % 64;
  (*out)[word] |= m[0] << bit;
  (*out)[word + 1] |= (bit != 0 ? m[0] >> (64 - bit) : 0) | m[1] << bit;
  (*out)[word + 2] |= bit != 0 ? m[1] >> (64 - bit) : 0;
}

// The neighbour lists of ggml's iq2xs_init_impl / iq3xs_init_impl for every off-grid key whose levels are all
// < nlevels: the entries at the nwant smallest distinct squared level distances, by (distance, index). ggml scans
// the whole grid per key; here a key and an entry are split into halves (high and low group / 2 levels), the
// distance being the sum of the halves' distances, so per key one pass over the distinct high halves of the grid
// finds the distances present, and only entries whose high half is near enough are visited.
void ListNeighbours(const std::vector<uint16_t>& entry_keys, int group, int bits, int nlevels, int nwant,
                    std::vector<int32_t>* map, std::vector<uint16_t>* neighbours) {
  const int half_bits = bits * group / 2;
  const uint32_t half_mask = (1u << half_bits) - 1;
  const uint32_t level_mask = (1u << bits) - 1;
  // The halves with every level < nlevels, numbered 0..nh-1 (-1: a half keys never have).
  std::vector<int> compact(size_t{1} << half_bits, -1);
  std::vector<uint32_t> halves;
  for (uint32_t h = 0; h <= half_mask; ++h) {
    bool used = true;
    for (int k = 0; k < group / 2; ++k) used = used && static_cast<int>((h >> (bits * k)) & level_mask) < nlevels;
    if (used) {
      compact[h] = static_cast<int>(halves.size());
      halves.push_back(h);
    }
  }
  const int nh = static_cast<int>(halves.size());
  std::vector<uint8_t> half_d2(static_cast<size_t>(nh) * nh);  // squared level distance of two halves
  for (int a = 0; a < nh; ++a) {
    for (int b = 0; b < nh; ++b) {
      int d = 0;
      for (int k = 0; k < group / 2; ++k) {
        const int delta = static_cast<int>((halves[a] >> (bits * k)) & level_mask) -
                          static_cast<int>((halves[b] >> (bits * k)) & level_mask);
        d += delta * delta;
      }
      half_d2[static_cast<size_t>(a) * nh + b] = static_cast<uint8_t>(d);
    }
  }
  // Entries by high half, in index order, and per (high half h, key low half lo) the set of low-half distances of
  // h's entries from lo (distances < 128).
  std::vector<std::vector<uint16_t>> by_high(nh);
  std::vector<int> low_of(entry_keys.size());
  for (size_t j = 0; j < entry_keys.size(); ++j) {
    by_high[compact[entry_keys[j] >> half_bits]].push_back(static_cast<uint16_t>(j));
    low_of[j] = compact[entry_keys[j] & half_mask];
  }
  std::vector<std::array<uint64_t, 2>> low_d2(static_cast<size_t>(nh) * nh, {0, 0});
  for (int h = 0; h < nh; ++h) {
    for (const uint16_t j : by_high[h]) {
      for (int lo = 0; lo < nh; ++lo) {
        const int d = half_d2[static_cast<size_t>(lo) * nh + low_of[j]];
        low_d2[static_cast<size_t>(h) * nh + lo][d / 64] |= uint64_t{1} << (d % 64);
      }
    }
  }
  std::vector<std::pair<int, uint16_t>> found;  // (distance, entry)
  for (size_t key = 0; key < map->size(); ++key) {
    if ((*map)[key] >= 0) continue;
    const int hi = compact[key >> half_bits];
    const int lo = compact[key & half_mask];
    if (hi < 0 || lo < 0) continue;
    std::array<uint64_t, 4> present = {};  // bit d: some entry lies at distance d
    for (int h = 0; h < nh; ++h) {
      if (!by_high[h].empty()) OrShifted(low_d2[static_cast<size_t>(h) * nh + lo], half_d2[hi * nh + h], &present);
    }
    int threshold = 0;  // the nwant-th smallest distance present (or the largest, when fewer are)
    for (int w = 0, count = 0; w < 4 && count < nwant; ++w) {
      for (uint64_t m = present[w]; m != 0 && count < nwant; m &= m - 1, ++count) {
        threshold = 64 * w + std::countr_zero(m);
      }
    }
    found.clear();
    for (int h = 0; h < nh; ++h) {
      const int base = half_d2[hi * nh + h];
      if (base > threshold) continue;
      for (const uint16_t j : by_high[h]) {
        const int d = base + half_d2[static_cast<size_t>(lo) * nh + low_of[j]];
        if (d <= threshold) found.emplace_back(d, j);
      }
    }
    std::sort(found.begin(), found.end());
    (*map)[key] = -static_cast<int32_t>(neighbours->size() + 1);
    neighbours->push_back(static_cast<uint16_t>(found.size()));
    for (const auto& [d, j] : found) neighbours->push_back(j);
  }
}

}  // namespace

LatticeCodebook::LatticeCodebook(LatticeGrid grid) {
  const GridSource src = Source(grid);
  group_ = src.group;
  bits_ = src.bits;
  const int nlevels = static_cast<int>(src.levels.size());
  entries_.resize(static_cast<size_t>(src.size) * group_);
  for (int j = 0; j < src.size; ++j) {
    const uint64_t e = src.entry(j);
    for (int k = 0; k < group_; ++k) {
      const auto l = std::find(src.levels.begin(), src.levels.end(), GridByte(e, k)) - src.levels.begin();
      entries_[static_cast<size_t>(j) * group_ + k] = static_cast<int8_t>(2 * l + 1);
    }
  }
  map_.assign(size_t{1} << (bits_ * group_), kUnlisted);
  int8_t levels[8];
  for (int j = 0; j < src.size; ++j) {
    Levels(j, levels);
    map_[KeyOfLevels(levels)] = j;
  }

  // Neighbour lists for the off-grid keys whose levels the grid uses (the quantizers clamp to those; ggml also
  // lists keys with the unused 2-bit level 3, which no search looks up).
  std::vector<uint16_t> entry_keys(src.size);
  for (int j = 0; j < src.size; ++j) {
    Levels(j, levels);
    entry_keys[j] = KeyOfLevels(levels);
  }
  ListNeighbours(entry_keys, group_, bits_, nlevels, src.nwant, &map_, &neighbours_);
}

uint16_t LatticeCodebook::KeyOfLevels(const int8_t* L) const {
  uint32_t key = 0;
  for (int k = 0; k < group_; ++k) key |= static_cast<uint32_t>(L[k]) << (bits_ * k);
  return static_cast<uint16_t>(key);
}

std::span<const uint16_t> LatticeCodebook::Neighbours(uint16_t key) const {
  if (map_[key] >= 0 || map_[key] == kUnlisted) return {};
  const uint16_t* list = &neighbours_[static_cast<size_t>(-map_[key] - 1)];
  return {list + 1, list[0]};
}

void LatticeCodebook::Levels(int index, int8_t* L) const {
  const int8_t* pg = Entry(index);
  for (int k = 0; k < group_; ++k) L[k] = static_cast<int8_t>((pg[k] - 1) / 2);
}

int LatticeCodebook::BestNeighbour(uint16_t key, const float* xval, const float* weight, float scale, int8_t* L) const {
  float best_d2 = FLT_MAX;
  int grid_index = -1;
  for (const uint16_t j : Neighbours(key)) {
    const int8_t* pg = Entry(j);
    float d2 = 0;
    for (int i = 0; i < group_; ++i) {
      const auto q = static_cast<float>(pg[i]);
      const float diff = scale * q - xval[i];
      d2 += weight[i] * diff * diff;
    }
    if (d2 < best_d2) {
      best_d2 = d2;
      grid_index = j;
    }
  }
  // ggml asserts a neighbour was found; only NaN or infinite distances leave none: keep entry 0.
  if (grid_index < 0) grid_index = 0;
  Levels(grid_index, L);
  return grid_index;
}

const LatticeCodebook& GetLatticeCodebook(LatticeGrid grid) {
  // Built on first use, once per grid, whichever thread asks first (quantization runs on several threads).
  constexpr int kGrids = static_cast<int>(LatticeGrid::kIQ3S) + 1;
  static std::once_flag once[kGrids];
  static std::optional<LatticeCodebook> codebooks[kGrids];
  const int i = static_cast<int>(grid);
  std::call_once(once[i], [&] { codebooks[i].emplace(grid); });
  return *codebooks[i];
}

namespace {

// Which groups of a sub-block the IQ2/IQ3 search re-quantizes with its final scale.
enum class Refine {
  kAll,            // every group, whenever the scale is positive (IQ2_XXS)
  kAllIfAnyOff,    // every group, when some group of the best candidate was off the grid (IQ3_S)
  kOffGridGroups,  // only the groups that were off the grid (IQ2_XS, IQ2_S, IQ3_XXS)
};

// The constants of one IQ2/IQ3 format's search (see SearchSuperBlock in the header).
struct LatticeFormat {
  LatticeGrid grid;
  int n;  // values per sub-block (32 or 16)
  int kmax_q;
  int nsteps;
  float step;
  Refine refine;
  bool even_parity;           // 7-bit signs (sign_mask 127), else 8 (0xff)
  float sigma2_factor;        // 1 (IQ2_XXS, IQ2_XS) or 2
  float zero_eps;             // ggml's GROUP_MAX_EPS*; IQ3_S tests max == 0, i.e. max < the least denormal
  bool qp_start;              // start scale from make_qp_quants (IQ2_XXS) instead of max / (2 kmax_q - 1)
  bool reset_levels_on_zero;  // an all-zero sub-block clears the carried levels (IQ2_XXS, IQ2_XS, IQ3_XXS)
  bool on_grid_start;         // the on-grid flags before the search (IQ2_XS, IQ2_S: true; IQ3_S: false) ...
  bool reset_on_grid;         // ... unless they carry over from the last sub-block (IQ3_XXS; IQ2_XXS: unused)
};

constexpr float kDenormMin = std::numeric_limits<float>::denorm_min();
// clang-format off
constexpr LatticeFormat kFormats[] = {
  // grid               n  kmax nsteps step  refine                  parity s2   zero_eps      qp     reset_L on_grid reset
  {LatticeGrid::kIQ2XXS, 32, 3,  6,    0.1f, Refine::kAll,           true,  1.f, kGroupMaxEps, true,  true,   false,  false},
  {LatticeGrid::kIQ2XS,  16, 3,  9,    0.1f, Refine::kOffGridGroups, true,  1.f, kGroupMaxEps, false, true,   true,   true},
  {LatticeGrid::kIQ2S,   16, 3,  9,    0.1f, Refine::kOffGridGroups, false, 2.f, 1e-8f,        false, false,  true,   true},
  {LatticeGrid::kIQ3XXS, 32, 8,  15,   0.2f, Refine::kOffGridGroups, true,  2.f, 1e-8f,        false, true,   false,  false},
  {LatticeGrid::kIQ3S,   32, 8,  9,    0.2f, Refine::kAllIfAnyOff,   false, 2.f, kDenormMin,   false, false,  false,  true},
};
// clang-format on

const LatticeFormat& FormatOf(LatticeGrid grid) {
  for (const LatticeFormat& f : kFormats) {
    if (f.grid == grid) return f;
  }
  return kFormats[0];  // unreachable: every caller passes an IQ2/IQ3 grid
}

// What one sub-block of n <= 32 values gives the search: importance weights, magnitudes xval with the signs folded
// out (LatticeFormat), sign bytes and the largest xval (ggml's MAX order: a NaN propagates).
struct SubBlockInput {
  float weight[32];
  float xval[32];
  uint8_t signs[4];
  float max;
};

void FoldSigns(const float* x, const float* weight, int n, bool even_parity, float* xval, uint8_t* signs) {
  for (int g = 0; g < n / 8; ++g) {
    const float* xg = x + 8 * g;
    const float* wg = weight + 8 * g;
    float* vg = xval + 8 * g;
    int nflip = 0;
    uint8_t s = 0;
    for (int i = 0; i < 8; ++i) {
      // `x >= 0`, not signbit: -0 keeps its sign bit clear and its xval -0, as in ggml.
      if (xg[i] >= 0) {
        vg[i] = xg[i];
      } else {
        vg[i] = -xg[i];
        ++nflip;
        s = static_cast<uint8_t>(s | 1 << i);
      }
    }
    if (even_parity && nflip % 2 != 0) {
      int imin = 0;
      float min = wg[0] * xg[0] * xg[0];
      for (int i = 1; i < 8; ++i) {
        const float ax = wg[i] * xg[i] * xg[i];
        if (ax < min) {
          min = ax;
          imin = i;
        }
      }
      vg[imin] = -vg[imin];
      s = static_cast<uint8_t>(s ^ 1 << imin);
    }
    signs[g] = even_parity ? static_cast<uint8_t>(s & 127) : s;
  }
}

void PrepareSubBlock(const float* x, const float* qw, float sigma2, int n, bool even_parity, SubBlockInput* in) {
  if (qw != nullptr) {
    ImportanceWeights(x, qw, n, sigma2, in->weight);
  } else {
    for (int i = 0; i < n; ++i) in->weight[i] = x[i] * x[i];
  }
  FoldSigns(x, in->weight, n, even_parity, in->xval, in->signs);
  in->max = in->xval[0];
  for (int i = 1; i < n; ++i) in->max = MaxOf(in->max, in->xval[i]);
}

// The weighted least-squares fit of q = 2L + 1 to xval, sums in ggml's order (sumqx += w*x*q, sumq2 += w*q*q).
struct ScaleFit {
  float sumqx = 0;
  float sumq2 = 0;
};
ScaleFit FitOddLevels(const float* xval, const float* weight, const int8_t* L, int n) {
  ScaleFit fit;
  for (int i = 0; i < n; ++i) {
    const float w = weight[i];
    const auto q = static_cast<float>(2 * L[i] + 1);
    fit.sumqx += w * xval[i] * q;
    fit.sumq2 += w * q * q;
  }
  return fit;
}

// Levels of one group for the inverse scale id: nearest_int(0.5 (id x - 1)) clamped to [0, kmax_q).
void RoundGroup(float id, const float* xval, int group, int kmax_q, int8_t* L) {
  for (int i = 0; i < group; ++i) {
    const int l = NearestInt(0.5f * (id * xval[i] - 1));
    L[i] = static_cast<int8_t>(std::max(0, std::min(kmax_q - 1, l)));
  }
}

// Whether a group's levels are on the grid; if not, they become those of the best neighbour for `scale`.
bool ResolveGroup(const LatticeCodebook& cb, const float* xval, const float* waux, float scale, int8_t* L) {
  const uint16_t key = cb.KeyOfLevels(L);
  if (cb.Find(key) >= 0) return true;
  cb.BestNeighbour(key, xval, waux, scale, L);
  return false;
}

// The candidate search and re-quantization of one non-zero sub-block (LatticeFormat). `scale` enters as the start
// and leaves as the sub-block's scale (before the sign fix); state->L holds the final levels.
void SearchSubBlock(const LatticeFormat& f, const LatticeCodebook& cb, const SubBlockInput& in, float max_for_ids,
                    float* scale, SubBlockState* state) {
  const int group = cb.group();
  const int ngroups = f.n / group;
  float waux[32];
  for (int i = 0; i < f.n; ++i) waux[i] = std::sqrt(in.weight[i]);
  int8_t Laux[32];
  bool on_grid_aux[8];
  if (f.reset_on_grid) std::fill(state->on_grid, state->on_grid + ngroups, f.on_grid_start);
  float best = 0;
  for (int is = -f.nsteps; is <= f.nsteps; ++is) {
    const float id = (static_cast<float>(2 * f.kmax_q - 1) + static_cast<float>(is) * f.step) / max_for_ids;
    const float this_scale = 1 / id;
    for (int k = 0; k < ngroups; ++k) {
      RoundGroup(id, in.xval + group * k, group, f.kmax_q, Laux + group * k);
      on_grid_aux[k] = ResolveGroup(cb, in.xval + group * k, waux + group * k, this_scale, Laux + group * k);
    }
    const ScaleFit fit = FitOddLevels(in.xval, in.weight, Laux, f.n);
    if (fit.sumq2 > 0 && fit.sumqx * fit.sumqx > best * fit.sumq2) {
      *scale = fit.sumqx / fit.sumq2;
      best = *scale * fit.sumqx;
      std::copy(Laux, Laux + f.n, state->L);
      std::copy(on_grid_aux, on_grid_aux + ngroups, state->on_grid);
    }
  }
  const bool any_off = std::find(state->on_grid, state->on_grid + ngroups, false) != state->on_grid + ngroups;
  if ((f.refine == Refine::kAll || any_off) && *scale > 0) {
    const float id = 1 / *scale;
    for (int k = 0; k < ngroups; ++k) {
      if (f.refine == Refine::kOffGridGroups && state->on_grid[k]) continue;
      RoundGroup(id, in.xval + group * k, group, f.kmax_q, state->L + group * k);
      ResolveGroup(cb, in.xval + group * k, waux + group * k, *scale, state->L + group * k);
    }
    const ScaleFit fit = FitOddLevels(in.xval, in.weight, state->L, f.n);
    if (fit.sumq2 > 0) *scale = fit.sumqx / fit.sumq2;
  }
}

}  // namespace

void SearchSuperBlock(LatticeGrid grid, const float* xbl, const float* qw, SubBlockState* state,
                      SuperBlockResult* out) {
  const LatticeFormat& f = FormatOf(grid);
  const LatticeCodebook& cb = GetLatticeCodebook(grid);
  const int group = cb.group();
  const float sigma2 = f.sigma2_factor * SumOfSquares(xbl, kQK_K) / static_cast<float>(kQK_K);
  SubBlockInput in;
  out->max_scale = 0;
  for (int ib = 0; ib < kQK_K / f.n; ++ib) {
    PrepareSubBlock(xbl + f.n * ib, qw != nullptr ? qw + f.n * ib : nullptr, sigma2, f.n, f.even_parity, &in);
    out->scales[ib] = 0;
    out->zero[ib] = in.max < f.zero_eps;
    if (out->zero[ib]) {
      if (f.reset_levels_on_zero) std::fill(state->L, state->L + f.n, int8_t{0});
      continue;
    }
    float scale = in.max / static_cast<float>(2 * f.kmax_q - 1);
    float max_for_ids = in.max;
    if (f.qp_start) {
      scale = MakeQpQuants(f.n, f.kmax_q + 1, in.xval, reinterpret_cast<uint8_t*>(state->L), in.weight);
      max_for_ids = scale * static_cast<float>(f.kmax_q);
    }
    SearchSubBlock(f, cb, in, max_for_ids, &scale, state);
    // ggml: "should never happen"; a negative scale turns positive with the signs flipped.
    if (scale < 0) {
      scale = -scale;
      for (int g = 0; g < f.n / 8; ++g) in.signs[g] = static_cast<uint8_t>(~in.signs[g] & (f.even_parity ? 127 : 0xff));
    }
    std::copy(in.signs, in.signs + f.n / 8, out->signs[ib]);
    // The final levels are on the grid; ggml aborts otherwise (reachable only with all-zero weights on IQ2_XXS,
    // whose start levels from make_qp_quants may lie off it): such a group takes entry 0.
    for (int k = 0; k < f.n / group; ++k) {
      const int8_t* Lg = state->L + group * k;
      const bool in_range = std::all_of(Lg, Lg + group, [&](int8_t l) { return l >= 0 && l < f.kmax_q; });
      const int found = in_range ? cb.Find(cb.KeyOfLevels(Lg)) : -1;
      out->index[ib][k] = static_cast<uint16_t>(found >= 0 ? found : 0);
    }
    out->scales[ib] = scale;
    out->max_scale = MaxOf(out->max_scale, scale);
  }
}

float EncodeSuperScale(float max_scale, int max_code, float fudge, uint16_t* d16) {
  const float d = max_scale / static_cast<float>(max_code);
  *d16 = F32ToF16(d * fudge);
  return 1 / d;
}

int SubBlockScaleCode(float id, float scale, int max_code) {
  const int l = NearestInt(0.5f * (id * scale - 1));
  return std::max(0, std::min(max_code, l));
}

void PackScaleNibbles(float id, const float* scales, int count, uint8_t* out) {
  for (int ib = 0; ib < count; ib += 2) {
    const int lo = SubBlockScaleCode(id, scales[ib], 15);
    const int hi = SubBlockScaleCode(id, scales[ib + 1], 15);
    out[ib / 2] = static_cast<uint8_t>(lo | hi << 4);
  }
}

}  // namespace pocketlm::quant::detail
