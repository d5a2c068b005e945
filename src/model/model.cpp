#include "model/model.h"

#include "io/gguf/gguf_fingerprint.h"
#include "model/interleave_weights.h"

namespace pocketlm {

Result<std::unique_ptr<Model>> Model::Load(const std::string& path, const ModelLoadOptions& options) {
  auto m = std::make_unique<Model>();
  PLM_ASSIGN_OR_RETURN(m->file_, GgufFile::Open(path));
  if (const GgufValue* t = m->file_.Find("general.type");
      t != nullptr && t->type == GgufType::kString && t->str == "adapter") {
    return InvalidArgument("'" + path +
                           "' is a LoRA adapter, not a model: load its base model and apply it as an adapter");
  }
  PLM_ASSIGN_OR_RETURN(m->config_, ReadModelConfig(m->file_));
  PLM_ASSIGN_OR_RETURN(m->weights_, BindWeights(m->file_, m->config_));
  if (options.interleave_for_inference) PLM_RETURN_IF_ERROR(InterleaveWeights(m->file_, &m->weights_));
  auto tok = Tokenizer::FromGguf(m->file_);
  if (!tok.ok()) return tok.status().WithContext("loading the tokenizer of '" + path + "'");
  m->tokenizer_ = std::move(tok).value();
  m->lineage_ = ModelLineage(m->file_);
  return m;
}

}  // namespace pocketlm
