// tokenizer.json -> GGUF tokenizer metadata. Conventions follow convert_hf_to_gguf.py (get_vocab_base,
// _set_vocab_gpt2, _set_vocab_sentencepiece, does_token_look_special) and gguf-py's SpecialVocab; where the
// reference needs tokenizer.model (SentencePiece protobuf) we derive the same data from tokenizer.json, see
// SpmScores below.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>

#include "convert/hf_tokenizer.h"
#include "convert/json_file.h"
#include "tokenizer/pretokenizer.h"

namespace pocketlm::convert {

namespace {

namespace fs = std::filesystem;

// Pre-tokenizer regexes as Hugging Face writes them in tokenizer.json (Llama-3's and Qwen2's Split patterns, and
// the pattern the ByteLevel pre-tokenizer applies itself when use_regex is true, tokenizers/src/pre_tokenizers/
// byte_level.rs). llama.cpp identifies these vocabularies by hashing the tokenization of a test text
// (get_vocab_base_pre); with no Python tokenizer to run we match the pre-tokenizer definition instead.
constexpr const char* kHfLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kHfQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct KnownPre {
  std::string signature;  // see PreSignature
  const char* name;       // tokenizer.ggml.pre
};

const std::vector<KnownPre>& KnownPres() {
  static const std::vector<KnownPre> known = {
      {"bytelevel+regex", "gpt-2"},
      {std::string("split(") + kHfLlama3Regex + "),bytelevel", "llama-bpe"},
      {std::string("split(") + kHfQwen2Regex + "),bytelevel", "qwen2"},
      {"digits1,bytelevel+regex", "smollm"},
  };
  return known;
}

void AppendSignature(const Json& pre, std::vector<std::string>* out) {
  if (!pre.is_object()) return;
  const std::string type = JsonString(pre, "type").value_or("?");
  if (type == "Sequence") {
    if (auto it = pre.find("pretokenizers"); it != pre.end() && it->is_array()) {
      for (const Json& p : *it) AppendSignature(p, out);
    }
  } else if (type == "ByteLevel") {
    out->push_back(JsonBool(pre, "use_regex").value_or(true) ? "bytelevel+regex" : "bytelevel");
  } else if (type == "Split") {
    std::string regex;
    if (auto it = pre.find("pattern"); it != pre.end() && it->is_object()) {
      if (auto r = JsonString(*it, "Regex")) regex = *r;
      if (auto s = JsonString(*it, "String")) regex = "string:" + *s;
    }
    out->push_back("split(" + regex + ")");
  } else if (type == "Digits") {
    out->push_back(JsonBool(pre, "individual_digits").value_or(false) ? "digits1" : "digits");
  } else {
    out->push_back(type);
  }
}

// "split(<regex>),bytelevel": the pre-tokenizer steps in order.
std::string PreSignature(const Json& pre) {
  std::vector<std::string> parts;
  AppendSignature(pre, &parts);
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : ",") + p;
  return s;
}

bool HasType(const Json& j, const std::string& type, const char* list_key) {
  if (!j.is_object()) return false;
  if (JsonString(j, "type").value_or("") == type) return true;
  if (auto it = j.find(list_key); it != j.end() && it->is_array()) {
    for (const Json& x : *it) {
      if (HasType(x, type, list_key)) return true;
    }
  }
  return false;
}

// convert_hf_to_gguf.py does_token_look_special: added tokens that should be control tokens although the
// tokenizer does not mark them special.
bool LooksSpecial(const std::string& t) {
  auto starts = [&](const char* p) { return t.rfind(p, 0) == 0; };
  auto ends = [&](const std::string& s) {
    return t.size() >= s.size() && t.compare(t.size() - s.size(), s.size(), s) == 0;
  };
  if (t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]") return true;
  if (starts("<|") && ends("|>")) return true;
  if (starts("<\xef\xbd\x9c") && ends("\xef\xbd\x9c>")) return true;  // <｜ ... ｜> (deepseek-coder)
  return starts("<unused") && ends(">");
}

bool IsByteToken(const std::string& t) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && hex(t[3]) && hex(t[4]) && t[5] == '>';
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

struct Added {
  int64_t id;
  std::string content;
  bool special;
};

class Importer {
 public:
  explicit Importer(const HfTokenizerFiles& files) : files_(files) {}

  Result<KvList> Run() {
    const std::string tj_path = (fs::path(files_.dir) / "tokenizer.json").string();
    auto tj = ReadJsonFile(tj_path);
    if (!tj.ok()) {
      if (tj.status().code() == ErrorCode::kNotFound) {
        return NotFound("'" + tj_path + "' does not exist; pocketlm imports tokenizers from tokenizer.json " +
                        "(tokenizer.model alone is not supported yet)");
      }
      return tj.status();
    }
    tj_ = std::move(tj).value();
    where_ = "'" + tj_path + "'";
    PLM_ASSIGN_OR_RETURN(tc_, ReadOptionalJsonFile((fs::path(files_.dir) / "tokenizer_config.json").string()));
    PLM_ASSIGN_OR_RETURN(cfg_, ReadOptionalJsonFile((fs::path(files_.dir) / "config.json").string()));
    PLM_ASSIGN_OR_RETURN(gen_, ReadOptionalJsonFile((fs::path(files_.dir) / "generation_config.json").string()));

    auto model = tj_.find("model");
    if (model == tj_.end() || !model->is_object()) return Corrupt(where_ + " has no \"model\" object");
    model_ = &*model;
    const std::string type = JsonString(*model_, "type").value_or("");
    static const Json kNull;
    const Json& pre = tj_.contains("pre_tokenizer") ? tj_["pre_tokenizer"] : kNull;
    const Json& dec = tj_.contains("decoder") ? tj_["decoder"] : kNull;
    const bool byte_level = HasType(pre, "ByteLevel", "pretokenizers") || HasType(dec, "ByteLevel", "decoders");

    PLM_RETURN_IF_ERROR(ReadAdded());
    KvList kv;
    if (type == "BPE" && byte_level) {
      PLM_RETURN_IF_ERROR(ReadBpeVocab());
      PLM_RETURN_IF_ERROR(Gpt2(pre, &kv));
    } else if (type == "BPE" || type == "Unigram") {
      if (type == "BPE") {
        PLM_RETURN_IF_ERROR(ReadBpeVocab());
      } else {
        PLM_RETURN_IF_ERROR(ReadUnigramVocab());
      }
      PLM_RETURN_IF_ERROR(Spm(type == "Unigram", pre, &kv));
    } else {
      return Unsupported(where_ + ": tokenizer model type '" + type +
                         "' is not supported; supported: byte-level BPE, SentencePiece-style BPE and Unigram");
    }
    PLM_RETURN_IF_ERROR(Special(&kv));
    return kv;
  }

 private:
  Status ReadAdded() {
    auto it = tj_.find("added_tokens");
    if (it == tj_.end() || it->is_null()) return Status::Ok();
    if (!it->is_array()) return Corrupt(where_ + ": added_tokens is not an array");
    for (const Json& a : *it) {
      auto id = JsonInt(a, "id");
      auto content = JsonString(a, "content");
      if (!id || !content || *id < 0 || *id >= (1 << 24)) return Corrupt(where_ + ": malformed added_tokens entry");
      added_.push_back({*id, *content, JsonBool(a, "special").value_or(false)});
    }
    return Status::Ok();
  }

  Status SetToken(int64_t id, std::string text) {
    if (id < 0 || id >= (1 << 24)) return Corrupt(where_ + ": token id " + std::to_string(id) + " is out of range");
    if (static_cast<size_t>(id) >= by_id_.size()) by_id_.resize(static_cast<size_t>(id) + 1);
    by_id_[static_cast<size_t>(id)] = std::move(text);
    return Status::Ok();
  }

  Status ReadBpeVocab() {
    auto v = model_->find("vocab");
    if (v == model_->end() || !v->is_object()) return Corrupt(where_ + ": model.vocab is not an object");
    for (auto it = v->begin(); it != v->end(); ++it) {
      if (!it.value().is_number_integer()) return Corrupt(where_ + ": model.vocab['" + it.key() + "'] is not an id");
      PLM_RETURN_IF_ERROR(SetToken(it.value().get<int64_t>(), it.key()));
    }
    auto m = model_->find("merges");
    if (m != model_->end() && !m->is_null()) {
      if (!m->is_array()) return Corrupt(where_ + ": model.merges is not an array");
      merges_.reserve(m->size());
      for (const Json& x : *m) {
        // Two forms: "a b" (tokenizers < 0.20) and ["a", "b"] (since, allowing spaces in tokens). gguf-py's
        // SpecialVocab writes both as "a b", spaces inside a part as U+0120 (llama.cpp issue 9692).
        if (x.is_string()) {
          const std::string s = x.get<std::string>();
          const size_t sp = s.find(' ', 1);
          if (sp == std::string::npos) return Corrupt(where_ + ": merge '" + s + "' has no space");
          merges_.push_back({s.substr(0, sp), s.substr(sp + 1)});
        } else if (x.is_array() && x.size() == 2 && x[0].is_string() && x[1].is_string()) {
          merges_.push_back({x[0].get<std::string>(), x[1].get<std::string>()});
        } else {
          return Corrupt(where_ + ": malformed entry in model.merges");
        }
      }
    }
    return Status::Ok();
  }

  Status ReadUnigramVocab() {
    auto v = model_->find("vocab");
    if (v == model_->end() || !v->is_array()) return Corrupt(where_ + ": Unigram model.vocab is not an array");
    unigram_scores_.reserve(v->size());
    for (const Json& x : *v) {
      if (!x.is_array() || x.size() != 2 || !x[0].is_string() || !x[1].is_number()) {
        return Corrupt(where_ + ": malformed Unigram vocab entry");
      }
      PLM_RETURN_IF_ERROR(SetToken(static_cast<int64_t>(unigram_scores_.size()), x[0].get<std::string>()));
      unigram_scores_.push_back(x[1].get<float>());
    }
    return Status::Ok();
  }

  // Token list padded to config.json's vocab_size with "[PAD<i>]" (get_vocab_base), added tokens placed by id.
  Status Layout() {
    for (const Added& a : added_) PLM_RETURN_IF_ERROR(SetToken(a.id, a.content));
    const auto n_tok = static_cast<int64_t>(by_id_.size());
    if (files_.n_vocab > 0 && n_tok > files_.n_vocab) {
      return Corrupt(where_ + " has token ids up to " + std::to_string(n_tok - 1) + " but config.json vocab_size is " +
                     std::to_string(files_.n_vocab));
    }
    const size_t n = static_cast<size_t>(std::max(n_tok, files_.n_vocab));
    by_id_.resize(n);
    tokens_.resize(n);
    types_.assign(n, kTokNormal);
    for (size_t i = 0; i < n; ++i) {
      if (!by_id_[i]) {
        tokens_[i] = "[PAD" + std::to_string(i) + "]";
        types_[i] = kTokUnused;
        padding_.push_back(i);
      } else {
        tokens_[i] = *by_id_[i];
      }
    }
    return Status::Ok();
  }

  void MarkAdded(bool spm, std::vector<float>* scores) {
    for (const Added& a : added_) {
      const auto i = static_cast<size_t>(a.id);
      if (a.special || LooksSpecial(a.content)) {
        types_[i] = kTokControl;
      } else {
        types_[i] = kTokUserDefined;
        // "pre-normalize user-defined spaces" (convert_hf_to_gguf.py, for Gemma): llama.cpp matches
        // user-defined tokens against raw text.
        if (spm) tokens_[i] = ReplaceAll(tokens_[i], "\xe2\x96\x81", " ");
      }
      if (scores != nullptr) (*scores)[i] = -1000.0f;
    }
  }

  Status Gpt2(const Json& pre, KvList* kv) {
    const std::string sig = PreSignature(pre);
    std::string pre_name;
    std::string known;
    for (const KnownPre& k : KnownPres()) {
      known += (known.empty() ? "" : ", ") + std::string(k.name);
      if (k.signature == sig) pre_name = k.name;
    }
    if (pre_name.empty()) {
      return Unsupported(where_ + ": byte-level BPE with pre-tokenizer [" + sig.substr(0, 200) +
                         "] is not one pocketlm recognises (known: " + known + ")");
    }
    if (auto pt = PreTokenizer::ForName(pre_name); !pt.ok()) return pt.status();
    if (auto norm = tj_.find("normalizer"); norm != tj_.end() && !norm->is_null()) {
      // Qwen2's NFC normalizer: GGUF has no key for it, but pocketlm's Tokenizer applies NFC to every vocab with
      // pre = "qwen2" (tokenizer.cpp), so it holds for Qwen2/2.5/3; with any other pre-tokenizer it is dropped,
      // as llama.cpp drops it for all (its BPE tokenizer has no normalizers).
      if (JsonString(*norm, "type").value_or("") != "NFC") {
        return Unsupported(where_ + ": byte-level BPE with normalizer " + norm->dump().substr(0, 120) +
                           " is not supported");
      }
    }
    PLM_RETURN_IF_ERROR(Layout());
    MarkAdded(/*spm=*/false, nullptr);
    kv->Str("tokenizer.ggml.model", "gpt2");
    kv->Str("tokenizer.ggml.pre", pre_name);
    kv->StrArray("tokenizer.ggml.tokens", tokens_);
    kv->I32Array("tokenizer.ggml.token_type", types_);
    std::vector<std::string> merges;
    merges.reserve(merges_.size());
    for (const auto& [l, r] : merges_) {
      merges.push_back(ReplaceAll(l, " ", "\xc4\xa0") + " " + ReplaceAll(r, " ", "\xc4\xa0"));
    }
    kv->StrArray("tokenizer.ggml.merges", std::move(merges));
    return Status::Ok();
  }

  // llama.cpp's SentencePiece tokenizer merges the adjacent pair whose concatenation is the vocab entry with the
  // highest score. tokenizer.json keeps no scores for BPE, but HF's SentencePieceExtractor wrote its merges in
  // decreasing score of the merged piece, so score = -(rank of the first merge producing the token) orders every
  // merge as the SentencePiece model did. Tokens no merge produces get the lowest scores (they only matter if
  // llama.cpp's tokenizer could reach them, which BPE cannot); byte and unknown tokens keep 0 as in
  // SentencePiece models.
  std::vector<float> SpmScores(bool unigram) {
    const size_t n = tokens_.size();
    std::vector<float> scores(n, 0.0f);
    if (unigram) {
      for (size_t i = 0; i < n && i < unigram_scores_.size(); ++i) scores[i] = unigram_scores_[i];
      return scores;
    }
    std::unordered_map<std::string, int32_t> id_of;
    id_of.reserve(n);
    for (size_t i = 0; i < n; ++i) id_of.emplace(tokens_[i], static_cast<int32_t>(i));
    std::vector<bool> set(n, false);
    for (size_t rank = 0; rank < merges_.size(); ++rank) {
      auto it = id_of.find(merges_[rank].first + merges_[rank].second);
      if (it == id_of.end() || set[static_cast<size_t>(it->second)]) continue;
      set[static_cast<size_t>(it->second)] = true;
      scores[static_cast<size_t>(it->second)] = -static_cast<float>(rank);
    }
    const auto floor = static_cast<float>(merges_.size());
    for (size_t i = 0; i < n; ++i) {
      if (!set[i] && types_[i] == kTokNormal) scores[i] = -floor - static_cast<float>(i);
    }
    return scores;
  }

  // Whether SentencePiece's add_dummy_prefix is on: a Prepend("▁") normalizer (tokenizers' LlamaConverter) or a
  // Metaspace pre-tokenizer that prepends.
  bool AddSpacePrefix(const Json& pre) const {
    bool prefix = false;
    std::function<void(const Json&)> visit = [&](const Json& j) {
      if (!j.is_object()) return;
      const std::string t = JsonString(j, "type").value_or("");
      if (t == "Prepend" && JsonString(j, "prepend").value_or("") == "\xe2\x96\x81") prefix = true;
      if (t == "Metaspace") {
        if (auto s = JsonString(j, "prepend_scheme"))
          prefix = *s != "never";
        else
          prefix = JsonBool(j, "add_prefix_space").value_or(true);
      }
      for (const char* k : {"normalizers", "pretokenizers"}) {
        if (auto it = j.find(k); it != j.end() && it->is_array()) {
          for (const Json& x : *it) visit(x);
        }
      }
    };
    if (auto it = tj_.find("normalizer"); it != tj_.end()) visit(*it);
    visit(pre);
    return prefix;
  }

  Status Spm(bool unigram, const Json& pre, KvList* kv) {
    PLM_RETURN_IF_ERROR(Layout());
    const bool byte_fallback = JsonBool(*model_, "byte_fallback").value_or(false);
    if (byte_fallback) {
      for (size_t i = 0; i < tokens_.size(); ++i) {
        if (types_[i] == kTokNormal && IsByteToken(tokens_[i])) types_[i] = kTokByte;
      }
    }
    std::optional<int64_t> unk;
    if (unigram) unk = JsonInt(*model_, "unk_id");
    if (auto u = JsonString(*model_, "unk_token")) {
      for (size_t i = 0; i < tokens_.size(); ++i) {
        if (tokens_[i] == *u) unk = static_cast<int64_t>(i);
      }
    }
    if (unk && *unk >= 0 && static_cast<size_t>(*unk) < types_.size()) types_[static_cast<size_t>(*unk)] = kTokUnknown;
    std::vector<float> scores = SpmScores(unigram);
    // _create_vocab_sentencepiece pads with score -10000 and type UNUSED; Phi3MiniModel.set_vocab with UNKNOWN.
    for (size_t i : padding_) {
      scores[i] = -10000.0f;
      if (files_.arch == "phi3") types_[i] = kTokUnknown;
    }
    MarkAdded(/*spm=*/true, &scores);
    kv->Str("tokenizer.ggml.model", "llama");
    kv->Str("tokenizer.ggml.pre", "default");
    kv->StrArray("tokenizer.ggml.tokens", tokens_);
    kv->F32Array("tokenizer.ggml.scores", scores);
    kv->I32Array("tokenizer.ggml.token_type", types_);
    // llama.cpp's default for "llama" vocabularies is true; Gemma's converter writes false.
    if (!AddSpacePrefix(pre)) kv->Bool("tokenizer.ggml.add_space_prefix", false);
    return Status::Ok();
  }

  std::optional<int64_t> IdOfText(const std::string& text) const {
    for (const Added& a : added_) {
      if (a.content == text) return a.id;
    }
    for (size_t i = 0; i < tokens_.size(); ++i) {
      if (tokens_[i] == text && types_[i] != kTokUnused) return static_cast<int64_t>(i);
    }
    return std::nullopt;
  }

  static std::optional<int64_t> IdFrom(const std::optional<Json>& j, const std::string& key) {
    if (!j) return std::nullopt;
    auto it = j->find(key);
    if (it == j->end()) return std::nullopt;
    if (it->is_number_integer()) return it->get<int64_t>();
    if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) return (*it)[0].get<int64_t>();
    return std::nullopt;
  }

  std::optional<std::string> TokenTextFromConfig(const std::string& typ) const {
    if (!tc_) return std::nullopt;
    auto it = tc_->find(typ + "_token");
    if (it == tc_->end()) return std::nullopt;
    if (it->is_string()) return it->get<std::string>();
    if (it->is_object()) return JsonString(*it, "content");
    return std::nullopt;
  }

  // SpecialVocab: ids from tokenizer_config.json's <typ>_token texts, else config.json's <typ>_token_id; we also
  // fall back to generation_config.json. add_<typ>_token from tokenizer_config.json, else (newer gguf-py) from a
  // TemplateProcessing post-processor.
  Status Special(KvList* kv) {
    const std::pair<const char*, const char*> kinds[] = {{"bos", "bos_token_id"},
                                                         {"eos", "eos_token_id"},
                                                         {"unk", "unknown_token_id"},
                                                         {"sep", "seperator_token_id"},  // sic, gguf-py's key
                                                         {"pad", "padding_token_id"}};
    std::map<std::string, std::string> texts;
    for (const auto& [typ, key] : kinds) {
      std::optional<int64_t> id;
      if (auto text = TokenTextFromConfig(typ)) {
        texts[typ] = *text;
        id = IdOfText(*text);
      }
      if (!id) id = IdFrom(cfg_, std::string(typ) + "_token_id");
      if (!id) id = IdFrom(gen_, std::string(typ) + "_token_id");
      if (id && *id >= 0 && static_cast<size_t>(*id) < tokens_.size()) {
        kv->U32(std::string("tokenizer.ggml.") + key, static_cast<uint32_t>(*id));
      }
    }
    for (const char* typ : {"bos", "eos"}) {
      std::optional<bool> add;
      if (tc_) add = JsonBool(*tc_, (std::string("add_") + typ + "_token").c_str());
      if (!add) add = FromTemplate(typ, texts);
      if (add) kv->Bool(std::string("tokenizer.ggml.add_") + typ + "_token", *add);
    }
    PLM_RETURN_IF_ERROR(ChatTemplates(kv));
    return Status::Ok();
  }

  std::optional<bool> FromTemplate(const std::string& typ, const std::map<std::string, std::string>& texts) const {
    auto pp = tj_.find("post_processor");
    if (pp == tj_.end() || !pp->is_object() || JsonString(*pp, "type").value_or("") != "TemplateProcessing") {
      return std::nullopt;
    }
    auto single = pp->find("single");
    auto t = texts.find(typ);
    if (single == pp->end() || !single->is_array() || single->empty() || t == texts.end()) return std::nullopt;
    const Json& e = typ == "bos" ? single->front() : single->back();
    if (auto st = e.find("SpecialToken"); st != e.end() && st->is_object()) {
      return JsonString(*st, "id").value_or("") == t->second;
    }
    return false;
  }

  Status ChatTemplates(KvList* kv) {
    std::optional<Json> tmpl;
    if (tc_) {
      if (auto it = tc_->find("chat_template"); it != tc_->end() && !it->is_null()) tmpl = *it;
    }
    if (!tmpl) {
      const std::string jinja = (fs::path(files_.dir) / "chat_template.jinja").string();
      if (auto text = ReadTextFile(jinja); text.ok()) tmpl = Json(*text);
    }
    if (!tmpl) {
      PLM_ASSIGN_OR_RETURN(auto ct, ReadOptionalJsonFile((fs::path(files_.dir) / "chat_template.json").string()));
      if (ct && ct->contains("chat_template")) tmpl = (*ct)["chat_template"];
    }
    if (!tmpl) return Status::Ok();
    if (tmpl->is_string()) {
      kv->Str("tokenizer.chat_template", tmpl->get<std::string>());
    } else if (tmpl->is_array()) {
      // [{"name": "default", "template": ...}, {"name": "tool_use", ...}] -> tokenizer.chat_template[.<name>]
      for (const Json& t : *tmpl) {
        auto name = JsonString(t, "name");
        auto text = JsonString(t, "template");
        if (!name || !text) continue;
        kv->Str(*name == "default" ? "tokenizer.chat_template" : "tokenizer.chat_template." + *name, *text);
      }
    }
    return Status::Ok();
  }

  const HfTokenizerFiles& files_;
  std::string where_;
  Json tj_;
  const Json* model_ = nullptr;
  std::optional<Json> tc_, cfg_, gen_;
  std::vector<Added> added_;
  std::vector<std::optional<std::string>> by_id_;
  std::vector<std::pair<std::string, std::string>> merges_;
  std::vector<float> unigram_scores_;
  std::vector<std::string> tokens_;
  std::vector<int32_t> types_;
  std::vector<size_t> padding_;  // ids no tokenizer file names
};

}  // namespace

Result<KvList> ImportHfTokenizer(const HfTokenizerFiles& files) {
  Importer importer(files);
  try {
    return importer.Run();
  } catch (const nlohmann::json::exception& e) {
    return Corrupt("tokenizer files in '" + files.dir + "': unexpected JSON content (" + e.what() + ")");
  }
}

}  // namespace pocketlm::convert
