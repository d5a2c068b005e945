#include "train/lora_set.h"

#include <cmath>

#include "io/gguf/gguf_fingerprint.h"
#include "io/gguf/gguf_writer.h"
#include "tensor/quant/quant.h"
#include "train/rng.h"

namespace pocketlm {
namespace {

struct TargetName {
  uint32_t bit;
  const char* ours;
  const char* peft;
};
constexpr TargetName kTargetNames[] = {
    {kLoraQ, "q", "q_proj"},          {kLoraK, "k", "k_proj"},          {kLoraV, "v", "v_proj"},
    {kLoraO, "o", "o_proj"},          {kLoraGate, "gate", "gate_proj"}, {kLoraUp, "up", "up_proj"},
    {kLoraDown, "down", "down_proj"},
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<uint32_t> ParseLoraTargets(std::string_view list) {
  list = Trim(list);
  if (list == "all-linear" || list == "all") return static_cast<uint32_t>(kLoraAllLinear);
  uint32_t bits = 0;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view item = Trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (item.empty()) continue;
    bool found = false;
    for (const TargetName& t : kTargetNames) {
      if (item == t.ours || item == t.peft) {
        bits |= t.bit;
        found = true;
      }
    }
    if (!found) {
      return InvalidArgument("unknown LoRA target '" + std::string(item) +
                             "' (use a comma-separated list of q,k,v,o,gate,up,down or all-linear)");
    }
  }
  if (bits == 0) return InvalidArgument("no LoRA targets given (use q,k,v,o,gate,up,down or all-linear)");
  return bits;
}

std::string LoraTargetsToString(uint32_t targets) {
  std::string s;
  for (const TargetName& t : kTargetNames) {
    if ((targets & t.bit) == 0) continue;
    if (!s.empty()) s += ",";
    s += t.ours;
  }
  return s;
}

Result<LoraSet> LoraSet::Create(const Model& model, const LoraConfig& config) {
  if (config.rank < 1 || config.rank > 4096) return InvalidArgument("LoRA rank must be 1..4096");
  if (!(config.alpha > 0.0f) || !std::isfinite(config.alpha)) return InvalidArgument("LoRA alpha must be > 0");
  if (!(config.dropout >= 0.0f && config.dropout < 1.0f)) return InvalidArgument("LoRA dropout must be in [0, 1)");
  if ((config.targets & kLoraAllLinear) == 0) return InvalidArgument("no LoRA targets");
  LoraSet set;
  set.config_ = config;
  const ModelWeights& w = model.weights();
  SplitMix64 rng(config.seed);
  Status status;
  auto add = [&](const TensorView& t, int layer) {
    if (t.empty() || !status.ok()) return;
    if (config.rank > std::min(t.n_in(), t.n_out())) {
      status = InvalidArgument("LoRA rank " + std::to_string(config.rank) + " exceeds the dimensions of '" +
                               std::string(t.name) + "' (" + std::to_string(t.n_in()) + " -> " +
                               std::to_string(t.n_out()) + "); choose a smaller rank");
      return;
    }
    LoraModule m;
    m.base_name = std::string(t.name);
    m.base = t;
    m.n_in = t.n_in();
    m.n_out = t.n_out();
    m.rank = config.rank;
    m.scale = config.rslora ? config.alpha / std::sqrt(static_cast<float>(m.rank))
                            : config.alpha / static_cast<float>(m.rank);
    m.layer = layer;
    m.index = static_cast<int>(set.modules_.size());
    m.slot = set.modules_.empty() || set.modules_.back().layer != layer ? 0 : set.modules_.back().slot + 1;
    set.max_slots_ = std::max(set.max_slots_, m.slot + 1);
    // PEFT: nn.init.kaiming_uniform_(A, a=sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in).
    const float bound = 1.0f / std::sqrt(static_cast<float>(m.n_in));
    m.a.resize(static_cast<size_t>(m.rank * m.n_in));
    for (float& v : m.a) v = (2.0f * rng.NextFloat() - 1.0f) * bound;
    m.b.assign(static_cast<size_t>(m.n_out * m.rank), 0.0f);
    m.grad_a.assign(m.a.size(), 0.0f);
    m.grad_b.assign(m.b.size(), 0.0f);
    set.by_base_[t.data] = set.modules_.size();
    set.modules_.push_back(std::move(m));
  };
  const uint32_t tg = config.targets;
  for (size_t il = 0; il < w.layers.size(); ++il) {
    const LayerWeights& l = w.layers[il];
    const int layer = static_cast<int>(il);
    if (!l.wqkv.empty()) {
      if (tg & (kLoraQ | kLoraK | kLoraV)) add(l.wqkv, layer);
    } else {
      if (tg & kLoraQ) add(l.wq, layer);
      if (tg & kLoraK) add(l.wk, layer);
      if (tg & kLoraV) add(l.wv, layer);
    }
    if (tg & kLoraO) add(l.wo, layer);
    if (l.w_gate.empty()) {
      if (tg & (kLoraGate | kLoraUp)) add(l.w_up, layer);  // fused [gate; up]
    } else {
      if (tg & kLoraGate) add(l.w_gate, layer);
      if (tg & kLoraUp) add(l.w_up, layer);
    }
    if (tg & kLoraDown) add(l.w_down, layer);
  }
  PLM_RETURN_IF_ERROR(status);
  if (set.modules_.empty()) return InvalidArgument("the LoRA targets match no tensor of this model");
  return set;
}

LoraModule* LoraSet::Find(const uint8_t* base_data) {
  auto it = by_base_.find(base_data);
  return it == by_base_.end() ? nullptr : &modules_[it->second];
}

void LoraSet::ZeroGrad() {
  for (LoraModule& m : modules_) {
    std::fill(m.grad_a.begin(), m.grad_a.end(), 0.0f);
    std::fill(m.grad_b.begin(), m.grad_b.end(), 0.0f);
  }
}

size_t LoraSet::n_params() const {
  size_t n = 0;
  for (const LoraModule& m : modules_) n += m.a.size() + m.b.size();
  return n;
}

namespace {

// `v` in `type` (f32, f16 or bf16: one value per block) as raw little-endian bytes.
Result<std::vector<uint8_t>> StoredAs(const std::vector<float>& v, DType type) {
  std::vector<uint8_t> out(v.size() * GetDTypeInfo(type).type_size);
  PLM_RETURN_IF_ERROR(quant::QuantizeRow(type, v.data(), out.data(), static_cast<int64_t>(v.size())));
  return out;
}

}  // namespace

Status LoraSet::WriteGguf(const std::string& path, const Model& base, DType type) const {
  if (type != DType::kF32 && type != DType::kF16 && type != DType::kBF16) {
    return InvalidArgument("adapters are stored as f32, f16 or bf16, not " + std::string(DTypeName(type)));
  }
  GgufWriter w;
  w.SetString("general.type", "adapter");
  w.SetString("general.architecture", base.config().arch);
  w.SetString("adapter.type", "lora");
  // llama.cpp applies alpha / r; with rsLoRA the effective scale alpha / sqrt(r) is stored as alpha * sqrt(r),
  // as llama.cpp's convert_lora_to_gguf.py does.
  const float r = static_cast<float>(config_.rank);
  w.SetF32("adapter.lora.alpha", config_.rslora ? config_.alpha * std::sqrt(r) : config_.alpha);
  w.SetU32("pocketlm.lora.rank", static_cast<uint32_t>(config_.rank));
  w.SetF32("pocketlm.lora.alpha", config_.alpha);
  w.SetBool("pocketlm.lora.rslora", config_.rslora);
  w.SetString("pocketlm.lora.targets", LoraTargetsToString(config_.targets));
  w.SetString("pocketlm.base.fingerprint", ModelFingerprint(base.file()));
  w.SetString("pocketlm.base.lineage", base.lineage());
  for (const LoraModule& m : modules_) {
    // ggml order: lora_a ne = [n_in, r] (r rows of n_in), lora_b ne = [r, n_out]: the same bytes as A and B.
    PLM_ASSIGN_OR_RETURN(const std::vector<uint8_t> a, StoredAs(m.a, type));
    PLM_ASSIGN_OR_RETURN(const std::vector<uint8_t> b, StoredAs(m.b, type));
    PLM_RETURN_IF_ERROR(w.AddTensor(m.base_name + ".lora_a", type, {m.n_in, m.rank}, a.data(), a.size()));
    PLM_RETURN_IF_ERROR(w.AddTensor(m.base_name + ".lora_b", type, {m.rank, m.n_out}, b.data(), b.size()));
  }
  return w.WriteFile(path);
}

}  // namespace pocketlm
