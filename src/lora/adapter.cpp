#include "lora/adapter.h"

#include <cstring>

#include "io/gguf/gguf_fingerprint.h"
#include "ops/matmul.h"

namespace pocketlm {

namespace {
// out = b^T: (r, n_out) in b's type (f32 for quantized b), viewed by *view.
void Transpose(const TensorView& b, std::vector<uint8_t>* out, TensorView* view) {
  const int64_t r = b.n_in(), n_out = b.n_out();
  const bool plain = b.type == DType::kF32 || b.type == DType::kF16 || b.type == DType::kBF16;
  const DType type = plain ? b.type : DType::kF32;
  const size_t elem = type == DType::kF32 ? 4 : 2;
  out->resize(static_cast<size_t>(r * n_out) * elem);
  std::vector<float> row(plain ? 0 : static_cast<size_t>(r));
  for (int64_t o = 0; o < n_out; ++o) {
    const uint8_t* src = b.row(o);
    if (!plain) {
      DequantizeRow(b, o, row.data());
      src = reinterpret_cast<const uint8_t*>(row.data());
    }
    for (int64_t k = 0; k < r; ++k) {
      std::memcpy(out->data() + static_cast<size_t>(k * n_out + o) * elem, src + static_cast<size_t>(k) * elem, elem);
    }
  }
  *view = TensorView{};
  view->type = type;
  view->ne[0] = n_out;
  view->ne[1] = r;
  view->data = out->data();
  view->nbytes = out->size();
}
}  // namespace

Result<std::unique_ptr<LoraAdapter>> LoraAdapter::Load(const std::string& path) {
  auto ad = std::make_unique<LoraAdapter>();
  PLM_ASSIGN_OR_RETURN(ad->file_, GgufFile::Open(path));
  const GgufFile& f = ad->file_;
  if (const GgufValue* t = f.Find("general.type");
      t != nullptr && t->type == GgufType::kString && t->str != "adapter") {
    return InvalidArgument("'" + path + "' is a " + std::string(t->str) + ", not a LoRA adapter (general.type)");
  }
  if (const GgufValue* t = f.Find("adapter.type"); t != nullptr && (t->type != GgufType::kString || t->str != "lora")) {
    return Unsupported("'" + path + "' is not a LoRA adapter (adapter.type); only LoRA is supported");
  }
  PLM_ASSIGN_OR_RETURN(std::string_view arch, f.GetString("general.architecture"));
  ad->arch_ = std::string(arch);
  PLM_ASSIGN_OR_RETURN(double alpha, f.GetFloat("adapter.lora.alpha", 0.0));
  ad->alpha_ = static_cast<float>(alpha);
  if (const GgufValue* l = f.Find("pocketlm.base.lineage"); l != nullptr && l->type == GgufType::kString) {
    ad->base_lineage_ = std::string(l->str);
  }

  // Pair up "<base>.lora_a" with "<base>.lora_b".
  for (const auto& t : f.tensors()) {
    std::string_view n = t.name;
    const bool is_a = n.ends_with(".lora_a");
    const bool is_b = n.ends_with(".lora_b");
    if (!is_a && !is_b) {
      return Unsupported("adapter '" + path + "' holds tensor '" + std::string(n) +
                         "', which is not a LoRA factor (.lora_a / .lora_b)");
    }
    std::string_view base = n.substr(0, n.size() - 7);
    LoraPair& p = ad->pairs_[base];
    (is_a ? p.a : p.b) = ViewOf(t);
    if (!MatMulSupports(t.type)) {
      return Unsupported("adapter '" + path + "': tensor '" + std::string(n) + "' has type " +
                         std::string(DTypeName(t.type)) + " (f32, f16 and bf16 are supported)");
    }
    if (t.n_dims != 2) return Corrupt("adapter '" + path + "': tensor '" + std::string(n) + "' is not 2-D");
  }
  for (const auto& [base, p] : ad->pairs_) {
    if (p.a.empty() || p.b.empty()) {
      return Corrupt("adapter '" + path + "': '" + std::string(base) + "' has only one of lora_a / lora_b");
    }
    if (p.a.n_out() != p.b.n_in()) {
      return Corrupt("adapter '" + path + "': '" + std::string(base) + "' lora_a rank " + std::to_string(p.a.n_out()) +
                     " differs from lora_b rank " + std::to_string(p.b.n_in()));
    }
  }
  if (ad->pairs_.empty()) return Corrupt("adapter '" + path + "' holds no LoRA tensors");
  for (auto& [base, p] : ad->pairs_) Transpose(p.b, &p.b_t_data, &p.b_t);
  return ad;
}

size_t LoraAdapter::ResidentBytes() const {
  size_t n = 0;
  for (const auto& [name, p] : pairs_) n += p.a.nbytes + p.b.nbytes + p.b_t_data.size();
  return n;
}

Status LoraAdapter::CheckAgainst(const GgufFile& base, const std::string* base_lineage) const {
  PLM_ASSIGN_OR_RETURN(std::string_view arch, base.GetString("general.architecture"));
  if (arch != arch_) {
    return InvalidArgument("adapter '" + path() + "' was made for architecture '" + arch_ + "' but model '" +
                           base.path() + "' is '" + std::string(arch) + "'");
  }
  for (const auto& [name, p] : pairs_) {
    const GgufTensorInfo* w = base.FindTensor(name);
    if (w == nullptr) {
      return InvalidArgument("adapter '" + path() + "' targets tensor '" + std::string(name) + "', which model '" +
                             base.path() + "' does not have (adapter made for another model?)");
    }
    if (w->n_dims != 2 || p.a.n_in() != w->ne[0] || p.b.n_out() != w->ne[1]) {
      return InvalidArgument("adapter '" + path() + "': '" + std::string(name) + "' maps " +
                             std::to_string(p.a.n_in()) + " -> " + std::to_string(p.b.n_out()) +
                             " but the base tensor has shape " + ShapeString(*w) +
                             " (adapter made for another model?)");
    }
  }
  if (!base_lineage_.empty()) {
    const std::string lineage = base_lineage != nullptr ? *base_lineage : ModelLineage(base);
    if (lineage != base_lineage_) {
      return InvalidArgument("adapter '" + path() + "' was trained on another model (lineage " + base_lineage_ +
                             ") than '" + base.path() + "' (lineage " + lineage +
                             "): the shapes fit but the weights differ; use it with the model it was trained on, "
                             "or any quantization of it");
    }
  }
  return Status::Ok();
}

}  // namespace pocketlm
