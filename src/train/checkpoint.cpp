#include "train/checkpoint.h"

#include <cstring>

#include "io/gguf/gguf_reader.h"
#include "io/gguf/gguf_writer.h"

namespace pocketlm {
namespace {

constexpr const char* kType = "pocketlm.checkpoint";

// Copies an f32 tensor of exactly n values out of the checkpoint.
Status ReadF32(const GgufFile& f, const std::string& name, float* out, size_t n) {
  const GgufTensorInfo* t = f.FindTensor(name);
  if (t == nullptr) return Corrupt("checkpoint '" + f.path() + "' lacks tensor '" + name + "'");
  if (t->type != DType::kF32 || static_cast<size_t>(t->n_elements()) != n) {
    return Corrupt("checkpoint '" + f.path() + "': tensor '" + name + "' has the wrong type or size");
  }
  std::memcpy(out, t->data, n * sizeof(float));
  return Status::Ok();
}

}  // namespace

Status SaveCheckpoint(const std::string& path, const LoraSet& loras, AdamW& opt, const TrainPosition& pos,
                      const CheckpointIdentity& id) {
  GgufWriter w;
  w.SetString("general.type", kType);
  w.SetString("checkpoint.base_fingerprint", id.base_fingerprint);
  w.SetString("checkpoint.settings", id.settings);
  w.SetU64("checkpoint.step", static_cast<uint64_t>(pos.step));
  w.SetU64("checkpoint.epoch", static_cast<uint64_t>(pos.epoch));
  w.SetU64("checkpoint.seq_index", static_cast<uint64_t>(pos.seq_index));
  w.SetU64("checkpoint.tokens_seen", static_cast<uint64_t>(pos.tokens_seen));
  w.SetU64("checkpoint.adam_step", static_cast<uint64_t>(opt.step()));
  size_t off = 0;
  for (const LoraModule& m : loras.modules()) {
    for (const auto& [suffix, v, ne0, ne1] :
         {std::tuple{".lora_a", &m.a, m.n_in, m.rank}, std::tuple{".lora_b", &m.b, m.rank, m.n_out}}) {
      const size_t bytes = v->size() * sizeof(float);
      PLM_RETURN_IF_ERROR(w.AddTensor(m.base_name + suffix, DType::kF32, {ne0, ne1}, v->data(), bytes));
      PLM_RETURN_IF_ERROR(
          w.AddTensor("adam.m." + m.base_name + suffix, DType::kF32, {ne0, ne1}, opt.m().data() + off, bytes));
      PLM_RETURN_IF_ERROR(
          w.AddTensor("adam.v." + m.base_name + suffix, DType::kF32, {ne0, ne1}, opt.v().data() + off, bytes));
      off += v->size();
    }
  }
  return w.WriteFile(path);
}

Status LoadCheckpoint(const std::string& path, LoraSet* loras, AdamW* opt, TrainPosition* pos,
                      const CheckpointIdentity& expected) {
  PLM_ASSIGN_OR_RETURN(GgufFile f, GgufFile::Open(path));
  PLM_ASSIGN_OR_RETURN(std::string_view type, f.GetString("general.type"));
  if (type != kType) return InvalidArgument("'" + path + "' is not a pocketlm training checkpoint");
  PLM_ASSIGN_OR_RETURN(std::string_view fp, f.GetString("checkpoint.base_fingerprint"));
  if (fp != expected.base_fingerprint) {
    return InvalidArgument("checkpoint '" + path + "' was made with a different base model (fingerprint " +
                           std::string(fp) + ", this base " + expected.base_fingerprint + ")");
  }
  PLM_ASSIGN_OR_RETURN(std::string_view settings, f.GetString("checkpoint.settings"));
  if (settings != expected.settings) {
    return InvalidArgument("checkpoint '" + path +
                           "' was made with other settings:\n  checkpoint: " + std::string(settings) +
                           "\n  this run:   " + expected.settings + "\nresume with the same options");
  }
  PLM_ASSIGN_OR_RETURN(int64_t step, f.GetInt("checkpoint.step"));
  PLM_ASSIGN_OR_RETURN(int64_t epoch, f.GetInt("checkpoint.epoch"));
  PLM_ASSIGN_OR_RETURN(int64_t seq_index, f.GetInt("checkpoint.seq_index"));
  PLM_ASSIGN_OR_RETURN(int64_t adam_step, f.GetInt("checkpoint.adam_step"));
  PLM_ASSIGN_OR_RETURN(int64_t seen, f.GetInt("checkpoint.tokens_seen"));
  size_t off = 0;
  for (LoraModule& m : loras->modules()) {
    for (const auto& [suffix, v] : {std::pair{".lora_a", &m.a}, std::pair{".lora_b", &m.b}}) {
      PLM_RETURN_IF_ERROR(ReadF32(f, m.base_name + suffix, v->data(), v->size()));
      PLM_RETURN_IF_ERROR(ReadF32(f, "adam.m." + m.base_name + suffix, opt->m().data() + off, v->size()));
      PLM_RETURN_IF_ERROR(ReadF32(f, "adam.v." + m.base_name + suffix, opt->v().data() + off, v->size()));
      off += v->size();
    }
  }
  opt->set_step(adam_step);
  pos->step = step;
  pos->epoch = epoch;
  pos->seq_index = seq_index;
  pos->tokens_seen = seen;
  return Status::Ok();
}

}  // namespace pocketlm
