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

Status SaveCheckpoint(const std::string& path, const std::vector<CheckpointTensor>& tensors, AdamW& opt,
                      const TrainPosition& pos, const CheckpointIdentity& id) {
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
  for (const CheckpointTensor& t : tensors) {
    if (off + t.n > opt.state_size()) return InvalidArgument("checkpoint tensors do not match the optimizer state");
    const size_t bytes = t.n * sizeof(float);
    PLM_RETURN_IF_ERROR(w.AddTensor(t.name, DType::kF32, t.ne, t.data, bytes));
    PLM_RETURN_IF_ERROR(w.AddTensor("adam.m." + t.name, DType::kF32, t.ne, opt.m().data() + off, bytes));
    PLM_RETURN_IF_ERROR(w.AddTensor("adam.v." + t.name, DType::kF32, t.ne, opt.v().data() + off, bytes));
    off += t.n;
  }
  return w.WriteFile(path);
}

Status LoadCheckpoint(const std::string& path, const std::vector<CheckpointTensor>& tensors, AdamW* opt,
                      TrainPosition* pos, const CheckpointIdentity& expected) {
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
  for (const CheckpointTensor& t : tensors) {
    if (off + t.n > opt->state_size()) return InvalidArgument("checkpoint tensors do not match the optimizer state");
    PLM_RETURN_IF_ERROR(ReadF32(f, t.name, t.data, t.n));
    PLM_RETURN_IF_ERROR(ReadF32(f, "adam.m." + t.name, opt->m().data() + off, t.n));
    PLM_RETURN_IF_ERROR(ReadF32(f, "adam.v." + t.name, opt->v().data() + off, t.n));
    off += t.n;
  }
  opt->set_step(adam_step);
  pos->step = step;
  pos->epoch = epoch;
  pos->seq_index = seq_index;
  pos->tokens_seen = seen;
  return Status::Ok();
}

}  // namespace pocketlm
