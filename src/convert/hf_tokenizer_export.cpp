// GGUF tokenizer metadata -> tokenizer.json + tokenizer_config.json, in the shapes Hugging Face's own converters
// produce (tokenizers' ByteLevel BPE for "gpt2" vocabularies; transformers' LlamaConverter for SentencePiece
// "llama" vocabularies: BPE with byte_fallback, a "▁" normalizer and merges in decreasing piece score), so that
// ImportHfTokenizer reads them back to the same vocabulary.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <unordered_map>

#include "convert/hf_tokenizer.h"
#include "convert/json_file.h"

namespace pocketlm::convert {

namespace {

constexpr const char* kSpace = "\xe2\x96\x81";  // "▁", SentencePiece's space

OrderedJson ByteLevel(bool use_regex) {
  OrderedJson b;
  b["type"] = "ByteLevel";
  b["add_prefix_space"] = false;
  b["trim_offsets"] = true;
  b["use_regex"] = use_regex;
  return b;
}

OrderedJson SplitThenByteLevel(const char* regex) {
  OrderedJson split;
  split["type"] = "Split";
  split["pattern"]["Regex"] = regex;
  split["behavior"] = "Isolated";
  split["invert"] = false;
  OrderedJson seq;
  seq["type"] = "Sequence";
  seq["pretokenizers"] = OrderedJson::array({split, ByteLevel(false)});
  return seq;
}

// The pre-tokenizer definitions ImportHfTokenizer recognises (hf_tokenizer_import.cpp, KnownPres).
Result<OrderedJson> PreTokenizerFor(const std::string& pre) {
  if (pre == "gpt-2") return ByteLevel(true);
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
    return SplitThenByteLevel(
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
        "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
  }
  if (pre == "qwen2") {
    return SplitThenByteLevel(
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
        "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
  }
  if (pre == "smollm") {
    OrderedJson digits;
    digits["type"] = "Digits";
    digits["individual_digits"] = true;
    OrderedJson seq;
    seq["type"] = "Sequence";
    seq["pretokenizers"] = OrderedJson::array({digits, ByteLevel(true)});
    return seq;
  }
  return Unsupported("exporting byte-level BPE vocabularies with tokenizer.ggml.pre = '" + pre +
                     "' is not supported yet (supported: gpt-2, llama-bpe, qwen2, smollm)");
}

OrderedJson Replace(const std::string& from, const std::string& to) {
  OrderedJson r;
  r["type"] = "Replace";
  r["pattern"]["String"] = from;
  r["content"] = to;
  return r;
}

struct Vocab {
  std::string model, pre;
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
  int64_t bos = -1, eos = -1, unk = -1, pad = -1;
  std::optional<bool> add_bos, add_eos;
  bool add_space_prefix = true;
  std::string chat_template;
};

Result<Vocab> ReadVocab(const GgufFile& f) {
  Vocab v;
  PLM_ASSIGN_OR_RETURN(std::string_view model, f.GetString("tokenizer.ggml.model"));
  v.model = std::string(model);
  if (v.model != "gpt2" && v.model != "llama") {
    return Unsupported("'" + f.path() + "': exporting tokenizer.ggml.model = '" + v.model +
                       "' is not supported (supported: gpt2, llama)");
  }
  if (f.Find("tokenizer.ggml.pre") != nullptr) {
    PLM_ASSIGN_OR_RETURN(std::string_view pre, f.GetString("tokenizer.ggml.pre"));
    v.pre = std::string(pre);
  }
  PLM_ASSIGN_OR_RETURN(const GgufValue* tokens, f.GetArray("tokenizer.ggml.tokens", GgufType::kString));
  for (auto s : tokens->strings) v.tokens.emplace_back(s);
  const size_t n = v.tokens.size();
  v.scores.assign(n, 0.0f);
  v.types.assign(n, kTokNormal);
  if (f.Find("tokenizer.ggml.scores") != nullptr) {
    PLM_ASSIGN_OR_RETURN(const GgufValue* s, f.GetArray("tokenizer.ggml.scores", GgufType::kF32));
    if (s->count != n) return Corrupt("'" + f.path() + "': tokenizer.ggml.scores has the wrong length");
    std::memcpy(v.scores.data(), s->raw, 4 * n);
  }
  if (f.Find("tokenizer.ggml.token_type") != nullptr) {
    PLM_ASSIGN_OR_RETURN(const GgufValue* t, f.GetArray("tokenizer.ggml.token_type", GgufType::kI32));
    if (t->count != n) return Corrupt("'" + f.path() + "': tokenizer.ggml.token_type has the wrong length");
    std::memcpy(v.types.data(), t->raw, 4 * n);
  }
  if (f.Find("tokenizer.ggml.merges") != nullptr) {
    PLM_ASSIGN_OR_RETURN(const GgufValue* m, f.GetArray("tokenizer.ggml.merges", GgufType::kString));
    for (auto s : m->strings) v.merges.emplace_back(s);
  }
  auto id = [&](const char* key, int64_t* out) -> Status {
    if (f.Find(key) == nullptr) return Status::Ok();
    PLM_ASSIGN_OR_RETURN(*out, f.GetInt(key));
    if (*out < 0 || static_cast<size_t>(*out) >= n) *out = -1;
    return Status::Ok();
  };
  PLM_RETURN_IF_ERROR(id("tokenizer.ggml.bos_token_id", &v.bos));
  PLM_RETURN_IF_ERROR(id("tokenizer.ggml.eos_token_id", &v.eos));
  PLM_RETURN_IF_ERROR(id("tokenizer.ggml.unknown_token_id", &v.unk));
  PLM_RETURN_IF_ERROR(id("tokenizer.ggml.padding_token_id", &v.pad));
  if (f.Find("tokenizer.ggml.add_bos_token") != nullptr) {
    PLM_ASSIGN_OR_RETURN(v.add_bos, f.GetBool("tokenizer.ggml.add_bos_token"));
  }
  if (f.Find("tokenizer.ggml.add_eos_token") != nullptr) {
    PLM_ASSIGN_OR_RETURN(v.add_eos, f.GetBool("tokenizer.ggml.add_eos_token"));
  }
  PLM_ASSIGN_OR_RETURN(v.add_space_prefix, f.GetBool("tokenizer.ggml.add_space_prefix", v.model == "llama"));
  if (f.Find("tokenizer.chat_template") != nullptr) {
    PLM_ASSIGN_OR_RETURN(std::string_view t, f.GetString("tokenizer.chat_template"));
    v.chat_template = std::string(t);
  }
  return v;
}

bool IsAdded(int32_t type) {
  return type == kTokControl || type == kTokUserDefined;
}

// transformers' SentencePieceExtractor: for every piece (in decreasing score), each split into two pieces of the
// vocabulary, ordered by their ids; the whole list ordered by the merged piece's score, stable.
OrderedJson SpmMerges(const Vocab& v) {
  std::unordered_map<std::string_view, int32_t> id_of;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (v.types[i] == kTokNormal) id_of.emplace(v.tokens[i], static_cast<int32_t>(i));
  }
  std::vector<int32_t> order;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (v.types[i] == kTokNormal) order.push_back(static_cast<int32_t>(i));
  }
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return v.scores[a] > v.scores[b]; });
  OrderedJson merges = OrderedJson::array();
  std::vector<std::pair<int32_t, int32_t>> local;
  for (int32_t id : order) {
    const std::string& t = v.tokens[static_cast<size_t>(id)];
    local.clear();
    for (size_t cut = 1; cut < t.size(); ++cut) {
      if ((static_cast<unsigned char>(t[cut]) & 0xC0) == 0x80) continue;  // split at UTF-8 character boundaries
      auto l = id_of.find(std::string_view(t).substr(0, cut));
      auto r = id_of.find(std::string_view(t).substr(cut));
      if (l != id_of.end() && r != id_of.end()) local.emplace_back(l->second, r->second);
    }
    std::sort(local.begin(), local.end());
    for (auto [l, r] : local) merges.push_back({v.tokens[static_cast<size_t>(l)], v.tokens[static_cast<size_t>(r)]});
  }
  return merges;
}

OrderedJson AddedTokens(const Vocab& v) {
  OrderedJson added = OrderedJson::array();
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (!IsAdded(v.types[i])) continue;
    OrderedJson a;
    a["id"] = i;
    a["content"] = v.tokens[i];
    a["single_word"] = false;
    a["lstrip"] = false;
    a["rstrip"] = false;
    a["normalized"] = false;
    a["special"] = v.types[i] == kTokControl;
    added.push_back(std::move(a));
  }
  return added;
}

Result<OrderedJson> TokenizerJson(const Vocab& v) {
  OrderedJson tj;
  tj["version"] = "1.0";
  tj["truncation"] = nullptr;
  tj["padding"] = nullptr;
  tj["added_tokens"] = AddedTokens(v);
  OrderedJson model;
  model["type"] = "BPE";
  model["dropout"] = nullptr;
  OrderedJson vocab = OrderedJson::object();
  const bool spm = v.model == "llama";
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    // The converters' padding up to vocab_size ("[PAD<i>]", UNUSED, or UNKNOWN for Phi-3) is not a token.
    const bool padding = v.tokens[i].rfind("[PAD", 0) == 0 && static_cast<int64_t>(i) != v.unk &&
                         (v.types[i] == kTokUnused || v.types[i] == kTokUnknown);
    if (padding) continue;
    if (!spm && IsAdded(v.types[i])) continue;  // byte-level vocabularies keep added tokens out of the BPE model
    vocab[v.tokens[i]] = i;
  }
  if (spm) {
    OrderedJson seq = OrderedJson::array();
    if (v.add_space_prefix) {
      OrderedJson prepend;
      prepend["type"] = "Prepend";
      prepend["prepend"] = kSpace;
      seq.push_back(prepend);
    }
    seq.push_back(Replace(" ", kSpace));
    tj["normalizer"]["type"] = "Sequence";
    tj["normalizer"]["normalizers"] = seq;
    tj["pre_tokenizer"] = nullptr;
    tj["post_processor"] = nullptr;
    OrderedJson dec = OrderedJson::array(
        {Replace(kSpace, " "), OrderedJson{{"type", "ByteFallback"}}, OrderedJson{{"type", "Fuse"}}});
    if (v.add_space_prefix) dec.push_back(OrderedJson{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    tj["decoder"]["type"] = "Sequence";
    tj["decoder"]["decoders"] = dec;
    model["unk_token"] = v.unk >= 0 ? OrderedJson(v.tokens[static_cast<size_t>(v.unk)]) : OrderedJson(nullptr);
  } else {
    tj["normalizer"] = v.pre == "qwen2" ? OrderedJson{{"type", "NFC"}} : OrderedJson(nullptr);
    PLM_ASSIGN_OR_RETURN(tj["pre_tokenizer"], PreTokenizerFor(v.pre));
    tj["post_processor"] = ByteLevel(false);
    tj["decoder"] = ByteLevel(true);
    model["unk_token"] = nullptr;
  }
  model["continuing_subword_prefix"] = nullptr;
  model["end_of_word_suffix"] = nullptr;
  model["fuse_unk"] = spm;
  model["byte_fallback"] = spm;
  model["ignore_merges"] = v.pre == "llama-bpe" || v.pre == "llama3" || v.pre == "llama-v3";
  model["vocab"] = std::move(vocab);
  if (spm) {
    model["merges"] = SpmMerges(v);
  } else {
    OrderedJson merges = OrderedJson::array();
    for (const std::string& m : v.merges) {
      const size_t sp = m.find(' ', 1);
      if (sp == std::string::npos) return Corrupt("tokenizer.ggml.merges entry '" + m + "' has no space");
      merges.push_back({m.substr(0, sp), m.substr(sp + 1)});
    }
    model["merges"] = std::move(merges);
  }
  tj["model"] = std::move(model);
  return tj;
}

OrderedJson TokenizerConfigJson(const Vocab& v) {
  OrderedJson tc;
  if (v.add_bos) tc["add_bos_token"] = *v.add_bos;
  if (v.add_eos) tc["add_eos_token"] = *v.add_eos;
  OrderedJson decoder = OrderedJson::object();
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (!IsAdded(v.types[i])) continue;
    decoder[std::to_string(i)] = {{"content", v.tokens[i]}, {"lstrip", false},
                                  {"normalized", false},    {"rstrip", false},
                                  {"single_word", false},   {"special", v.types[i] == kTokControl}};
  }
  tc["added_tokens_decoder"] = std::move(decoder);
  auto text = [&](int64_t id) {
    return id >= 0 ? OrderedJson(v.tokens[static_cast<size_t>(id)]) : OrderedJson(nullptr);
  };
  tc["bos_token"] = text(v.bos);
  tc["eos_token"] = text(v.eos);
  tc["unk_token"] = text(v.unk);
  if (v.pad >= 0) tc["pad_token"] = text(v.pad);
  if (!v.chat_template.empty()) tc["chat_template"] = v.chat_template;
  tc["clean_up_tokenization_spaces"] = false;
  tc["tokenizer_class"] = "PreTrainedTokenizerFast";
  return tc;
}

}  // namespace

Result<HfTokenizerText> ExportHfTokenizer(const GgufFile& f) {
  try {
    PLM_ASSIGN_OR_RETURN(Vocab v, ReadVocab(f));
    PLM_ASSIGN_OR_RETURN(OrderedJson tj, TokenizerJson(v));
    HfTokenizerText out;
    // error_handler replace: GGUF token texts are not guaranteed to be UTF-8 (byte tokens of some vocabularies).
    out.tokenizer_json = tj.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    out.tokenizer_config_json =
        TokenizerConfigJson(v).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    return out;
  } catch (const nlohmann::json::exception& e) {
    return Corrupt("'" + f.path() + "': cannot write the tokenizer as JSON (" + e.what() + ")");
  }
}

}  // namespace pocketlm::convert
