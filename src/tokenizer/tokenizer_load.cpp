// Tokenizer::FromGguf: reads a vocabulary the way llama.cpp's llama_vocab::impl::load does (same defaults,
// same special-token discovery by text), but reports bad metadata as errors instead of asserting.
#include <algorithm>
#include <cctype>
#include <cstring>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace pocketlm {

// llama.cpp's LLAMA_TOKEN_TYPE_* values in tokenizer.ggml.token_type.
enum : int32_t {
  kTypeNormal = 1,
  kTypeUnknown = 2,
  kTypeControl = 3,
  kTypeUserDefined = 4,
  kTypeUnused = 5,
  kTypeByte = 6
};

class TokenizerLoader {
 public:
  TokenizerLoader(const GgufFile& f, Tokenizer* t) : f_(f), t_(*t) {}

  Status Load() {
    PLM_RETURN_IF_ERROR(LoadModelType());
    PLM_RETURN_IF_ERROR(LoadTokens());
    if (t_.type_ == VocabType::kBpe) PLM_RETURN_IF_ERROR(LoadMerges());
    PLM_RETURN_IF_ERROR(LoadSpecialIds());
    FindSpecialByText();
    SetNameAttributes();
    BuildCaches();
    return Status::Ok();
  }

 private:
  Status Err(const std::string& what) const { return Corrupt("vocab in '" + f_.path() + "': " + what); }

  Status LoadModelType() {
    PLM_ASSIGN_OR_RETURN(std::string_view model, f_.GetString("tokenizer.ggml.model"));
    t_.model_ = std::string(model);
    if (f_.Find("tokenizer.ggml.pre") != nullptr) {
      PLM_ASSIGN_OR_RETURN(std::string_view pre, f_.GetString("tokenizer.ggml.pre"));
      t_.pre_ = std::string(pre);
    }
    if (model == "llama") {
      // llama.cpp defaults for SPM: bos 1, eos 2, unk 0, add_bos, add_space_prefix.
      t_.type_ = VocabType::kSpm;
      bos_ = 1, eos_ = 2, unk_ = 0;
      t_.add_bos_ = true;
      t_.add_space_prefix_ = true;
    } else if (model == "gpt2") {
      t_.type_ = VocabType::kBpe;
      bos_ = 11, eos_ = 11, unk_ = -1;  // llama.cpp's (Falcon-era) defaults
      PLM_ASSIGN_OR_RETURN(t_.pre_tokenizer_, PreTokenizer::ForName(t_.pre_));
      const PreTokenizerFlags& fl = t_.pre_tokenizer_->flags();
      t_.ignore_merges_ = fl.ignore_merges;
      t_.clean_spaces_ = fl.clean_spaces;
      t_.add_bos_ = fl.force_add_bos;
      if (fl.no_bos) bos_ = -1;
    } else {
      return Unsupported("vocab in '" + f_.path() + "': tokenizer.ggml.model = '" + std::string(model) +
                         "' is not supported; supported: llama (SentencePiece), gpt2 (byte-level BPE)");
    }
    PLM_ASSIGN_OR_RETURN(t_.add_space_prefix_, f_.GetBool("tokenizer.ggml.add_space_prefix", t_.add_space_prefix_));
    return Status::Ok();
  }

  Status LoadTokens() {
    PLM_ASSIGN_OR_RETURN(const GgufValue* tokens, f_.GetArray("tokenizer.ggml.tokens", GgufType::kString));
    const size_t n = tokens->strings.size();
    if (n == 0) return Err("tokenizer.ggml.tokens is empty");
    if (n > static_cast<size_t>(INT32_MAX)) return Err("too many tokens");
    const GgufValue* scores = nullptr;
    if (f_.Find("tokenizer.ggml.scores") != nullptr) {
      PLM_ASSIGN_OR_RETURN(scores, f_.GetArray("tokenizer.ggml.scores", GgufType::kF32));
      if (scores->count != n) {
        return Err("tokenizer.ggml.scores has " + std::to_string(scores->count) + " entries for " + std::to_string(n) +
                   " tokens");
      }
    }
    const GgufValue* types = nullptr;
    if (f_.Find("tokenizer.ggml.token_type") != nullptr) {
      PLM_ASSIGN_OR_RETURN(types, f_.GetArray("tokenizer.ggml.token_type", GgufType::kI32));
      if (types->count != n) {
        return Err("tokenizer.ggml.token_type has " + std::to_string(types->count) + " entries for " +
                   std::to_string(n) + " tokens");
      }
    }
    t_.tokens_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      auto& tok = t_.tokens_[i];
      tok.text = std::string(tokens->strings[i]);
      if (tok.text.empty()) tok.text = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp
      if (scores != nullptr) std::memcpy(&tok.score, scores->raw + 4 * i, 4);
      if (types != nullptr) {
        int32_t type = 0;
        std::memcpy(&type, types->raw + 4 * i, 4);
        switch (type) {
          case kTypeNormal: tok.attr = kAttrNormal; break;
          case kTypeUnknown: tok.attr = kAttrUnknown; break;
          case kTypeControl: tok.attr = kAttrControl; break;
          case kTypeUserDefined: tok.attr = kAttrUserDefined; break;
          case kTypeUnused: tok.attr = kAttrUnused; break;
          case kTypeByte: tok.attr = kAttrByte; break;
          default: tok.attr = kAttrUndefined; break;
        }
      }
    }
    // Later duplicates win, as llama.cpp's token_to_id[word] = i.
    t_.token_to_id_.reserve(n);
    for (size_t i = 0; i < n; ++i) t_.token_to_id_[t_.tokens_[i].text] = static_cast<int32_t>(i);
    return Status::Ok();
  }

  Status LoadMerges() {
    PLM_ASSIGN_OR_RETURN(const GgufValue* merges, f_.GetArray("tokenizer.ggml.merges", GgufType::kString));
    t_.merges_.reserve(merges->strings.size());
    for (size_t i = 0; i < merges->strings.size(); ++i) {
      std::string_view m = merges->strings[i];
      const size_t space = m.find(' ', 1);  // as llama.cpp: the first space after the first byte
      if (space == std::string_view::npos) {
        return Err("tokenizer.ggml.merges[" + std::to_string(i) + "] = '" + std::string(m) + "' has no space");
      }
      const std::string_view left = m.substr(0, space), right = m.substr(space + 1);
      const int32_t l = t_.Lookup(left), r = t_.Lookup(right);
      if (l < 0 || r < 0) {
        return Err("tokenizer.ggml.merges[" + std::to_string(i) + "] = '" + std::string(m) +
                   "' names a token not in tokenizer.ggml.tokens ('" + std::string(l < 0 ? left : right) + "')");
      }
      const uint64_t key = (static_cast<uint64_t>(l) << 32) | static_cast<uint32_t>(r);
      const int32_t result = t_.Lookup(std::string(left) + std::string(right));
      t_.merges_.emplace(key, Tokenizer::MergeInfo{static_cast<int32_t>(i), result});  // first rank wins
    }
    return Status::Ok();
  }

  // Reads an optional token id; llama.cpp ignores (keeps the default for) ids beyond the vocab.
  Status OptionalId(const char* key, int32_t* id) {
    if (f_.Find(key) == nullptr) return Status::Ok();
    PLM_ASSIGN_OR_RETURN(int64_t v, f_.GetInt(key));
    if (v >= 0 && v < t_.n_vocab()) *id = static_cast<int32_t>(v);
    return Status::Ok();
  }

  Status LoadSpecialIds() {
    PLM_RETURN_IF_ERROR(OptionalId("tokenizer.ggml.bos_token_id", &bos_));
    PLM_RETURN_IF_ERROR(OptionalId("tokenizer.ggml.eos_token_id", &eos_));
    PLM_RETURN_IF_ERROR(OptionalId("tokenizer.ggml.eot_token_id", &eot_));
    PLM_RETURN_IF_ERROR(OptionalId("tokenizer.ggml.eom_token_id", &eom_));
    PLM_RETURN_IF_ERROR(OptionalId("tokenizer.ggml.unknown_token_id", &unk_));
    PLM_RETURN_IF_ERROR(OptionalId("tokenizer.ggml.fim_pad_token_id", &fim_pad_));
    PLM_RETURN_IF_ERROR(OptionalId("tokenizer.ggml.fim_rep_token_id", &fim_rep_));
    PLM_RETURN_IF_ERROR(OptionalId("tokenizer.ggml.fim_sep_token_id", &fim_sep_));
    PLM_ASSIGN_OR_RETURN(t_.add_bos_, f_.GetBool("tokenizer.ggml.add_bos_token", t_.add_bos_));
    PLM_ASSIGN_OR_RETURN(t_.add_eos_, f_.GetBool("tokenizer.ggml.add_eos_token", t_.add_eos_));
    // Defaults may point past a small vocab; such ids do not exist.
    for (int32_t* id : {&bos_, &eos_, &unk_}) {
      if (*id >= t_.n_vocab()) *id = -1;
    }
    if (t_.add_bos_ && bos_ < 0) return Err("tokenizer.ggml.add_bos_token is true but there is no BOS token");
    if (t_.add_eos_ && eos_ < 0) return Err("tokenizer.ggml.add_eos_token is true but there is no EOS token");
    return Status::Ok();
  }

  void MarkControl(int32_t id) { t_.tokens_[id].attr = kAttrControl; }  // llama.cpp overrides, not ORs

  // llama.cpp finds EOT / EOM / FIM tokens by their text when the metadata does not name them, forces them to
  // control type, and collects every end-of-generation token (ref: ggml-org/llama.cpp#9606).
  void FindSpecialByText() {
    auto is_any = [](std::string_view s, std::initializer_list<std::string_view> names) {
      return std::find(names.begin(), names.end(), s) != names.end();
    };
    auto find = [&](int32_t* id, std::initializer_list<std::string_view> names) {
      if (*id >= 0) return;
      for (int32_t i = 0; i < t_.n_vocab(); ++i) {
        if (!is_any(t_.tokens_[i].text, names)) continue;
        *id = i;
        if ((t_.tokens_[i].attr & kAttrControl) == 0) MarkControl(i);
        return;
      }
    };
    find(&eot_,
         {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "<｜end▁of▁sentence｜>"});
    find(&eom_, {"<|eom_id|>"});
    find(&fim_pre_, {"<|fim_prefix|>", "<fim-prefix>", "<｜fim▁begin｜>", "<PRE>"});
    find(&fim_suf_, {"<|fim_suffix|>", "<fim-suffix>", "<｜fim▁hole｜>", "<SUF>"});
    find(&fim_mid_, {"<|fim_middle|>", "<fim-middle>", "<｜fim▁end｜>", "<MID>"});
    find(&fim_pad_, {"<|fim_pad|>", "<fim-pad>", "<PAD>"});
    find(&fim_rep_, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"});
    find(&fim_sep_, {"<|file_sep|>"});

    std::vector<int32_t>& eog = t_.eog_;
    for (int32_t id : {fim_pad_, fim_rep_, fim_sep_}) {
      if (id >= 0) eog.push_back(id);
    }
    for (int32_t i = 0; i < t_.n_vocab(); ++i) {
      if (is_any(t_.tokens_[i].text,
                 {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>"})) {
        eog.push_back(i);
        if ((t_.tokens_[i].attr & kAttrControl) == 0) MarkControl(i);
      }
    }
    for (int32_t id : {eos_, eot_, eom_}) {
      if (id >= 0) eog.push_back(id);
    }
    std::sort(eog.begin(), eog.end());
    eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  }

  // llama.cpp sets lstrip / rstrip by model name (llama_vocab::impl::load, "Handle per token attributes").
  void SetNameAttributes() {
    std::string name;
    if (auto n = f_.GetString("general.name"); n.ok()) name = std::string(*n);
    std::transform(name.begin(), name.end(), name.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
    auto set = [&](std::string_view text, uint32_t attr, bool on) {
      const int32_t id = t_.Lookup(text);
      if (id < 0) return;
      t_.tokens_[id].attr = on ? (t_.tokens_[id].attr | attr) : (t_.tokens_[id].attr & ~attr);
    };
    const std::string& pre = t_.pre_;
    if (pre.find("jina-v2-de") != std::string::npos || pre.find("jina-v2-es") != std::string::npos ||
        pre.find("jina-v2-code") != std::string::npos) {
      set("<mask>", kAttrLstrip, true);
    } else if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
      for (auto& tok : t_.tokens_) {
        if (tok.attr & kAttrSpecial) tok.attr |= kAttrRstrip;
      }
      set("</s>", kAttrRstrip, true);
      for (const char* s : {"<unk>", "<s>", "<|endoftext|>"}) set(s, kAttrRstrip, false);
    }
  }

  void BuildCaches() {
    t_.bos_ = bos_, t_.eos_ = eos_, t_.eot_ = eot_, t_.eom_ = eom_, t_.unk_ = unk_;
    auto& special = t_.special_by_length_;
    for (int32_t i = 0; i < t_.n_vocab(); ++i) {
      if (t_.tokens_[i].attr & kAttrSpecial) special.push_back(i);
    }
    std::stable_sort(special.begin(), special.end(),
                     [&](int32_t a, int32_t b) { return t_.tokens_[a].text.size() > t_.tokens_[b].text.size(); });
    if (t_.type_ == VocabType::kSpm) {
      // llama_vocab::byte_to_token: "<0xXX>", else the byte itself as a one-character token.
      static const char* kHex = "0123456789ABCDEF";
      t_.byte_tokens_.assign(256, -1);
      for (int b = 0; b < 256; ++b) {
        const char buf[6] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
        int32_t id = t_.Lookup(std::string_view(buf, 6));
        if (id < 0) id = t_.Lookup(std::string(1, static_cast<char>(b)));
        t_.byte_tokens_[b] = id;
      }
    }
  }

  const GgufFile& f_;
  Tokenizer& t_;
  int32_t bos_ = -1, eos_ = -1, eot_ = -1, eom_ = -1, unk_ = -1;
  int32_t fim_pre_ = -1, fim_suf_ = -1, fim_mid_ = -1, fim_pad_ = -1, fim_rep_ = -1, fim_sep_ = -1;
};

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufFile& f) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  TokenizerLoader loader(f, t.get());
  PLM_RETURN_IF_ERROR(loader.Load());
  return t;
}

}  // namespace pocketlm
