// TokenizeChat: rendered segments -> token ids and a per-token trainable flag.
//
// llama.cpp tokenizes a chat prompt as one string with parse_special = true. To give the same ids while keeping
// message text from being read as special tokens, we do the special-token split ourselves (only kSpecialToken
// segments become special tokens) and hand each maximal run of text between them to Tokenizer::Encode with
// parse_special = false, which applies the same rules to a run as llama.cpp does to a fragment (SentencePiece
// space prefix at the start, user-defined tokens split out). To know which segment each token came from, the
// tokens of a run are aligned back to its bytes (AlignTokens, which redoes Encode's steps: a token's piece alone
// cannot say which bytes it stands for, e.g. byte-fallback tokens spelling the "▁" of a space).
#include <algorithm>
#include <cctype>
#include <string>

#include "tokenizer/chat_template.h"
#include "tokenizer/token_align.h"
#include "tokenizer/unicode_nfc.h"

namespace pocketlm {
namespace {

constexpr uint8_t kTrainable = 1, kContent = 2;

bool IsSpace(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}  // as Tokenizer's strip

class ChatTokenizer {
 public:
  explicit ChatTokenizer(const Tokenizer& tok) : tok_(tok) {}

  Status Add(const ChatSegment& seg) {
    if (seg.kind != ChatSegment::kSpecialToken) {
      // A normalizing vocabulary (NFC) would encode other bytes than the run holds; normalize each segment here
      // so that the tokens still align with the run and each byte keeps its segment's flags.
      std::string normalized;
      const std::string& text = tok_.normalizes_nfc() && NormalizeNfc(seg.text, &normalized) ? normalized : seg.text;
      run_ += text;
      flags_.append(text.size(), static_cast<char>((seg.trainable ? kTrainable : 0) |
                                                   (seg.kind == ChatSegment::kContent ? kContent : 0)));
      return Status::Ok();
    }
    const std::optional<int32_t> id = tok_.FindSpecialToken(seg.text);
    if (!id) {
      return InvalidArgument("the chat template needs the special token '" + seg.text + "', which this vocabulary " +
                             (tok_.FindToken(seg.text) ? "has only as ordinary text" : "lacks") +
                             "; choose the chat template that matches the model");
    }
    const uint32_t attr = tok_.TokenAttributes(*id);
    PLM_RETURN_IF_ERROR(Flush((attr & kAttrLstrip) != 0));
    Push(*id, seg.trainable ? kTrainable : 0);
    markers_.push_back(*id);
    strip_front_ = (attr & kAttrRstrip) != 0;
    return Status::Ok();
  }

  Result<TokenizedChat> Finish() {
    PLM_RETURN_IF_ERROR(Flush(false));
    // A message's text must not turn into a token that controls the conversation (only user-defined tokens can
    // get here: Encode does not parse control tokens without parse_special).
    for (size_t i = 0; i < out_.tokens.size(); ++i) {
      const int32_t id = out_.tokens[i];
      if (!from_content_[i] || !(tok_.TokenAttributes(id) & kAttrUserDefined)) continue;
      const bool controls = id == tok_.bos() || id == tok_.eos() || tok_.IsEndOfGeneration(id) ||
                            std::find(markers_.begin(), markers_.end(), id) != markers_.end();
      if (controls) {
        return InvalidArgument("message text contains '" + tok_.TokenText(id) +
                               "', which this vocabulary always reads as a special token; refused so that message "
                               "text cannot inject control tokens");
      }
    }
    return std::move(out_);
  }

  void Start() {
    if (tok_.add_bos()) Push(tok_.bos(), 0);
  }

 private:
  void Push(int32_t id, uint8_t flags) {
    out_.tokens.push_back(id);
    out_.trainable.push_back((flags & kTrainable) ? 1 : 0);
    from_content_.push_back((flags & kContent) ? 1 : 0);
  }

  // Tokenizes the pending text run. `strip_back`: the next special token swallows whitespace before it.
  Status Flush(bool strip_back) {
    size_t begin = 0, end = run_.size();
    if (strip_front_) {
      while (begin < end && IsSpace(run_[begin])) ++begin;
    }
    if (strip_back) {
      while (end > begin && IsSpace(run_[end - 1])) --end;
    }
    strip_front_ = false;
    if (begin < end) {
      const std::string_view text = std::string_view(run_).substr(begin, end - begin);
      // Segments normalized one by one can still compose across a boundary (a message that starts with a
      // combining mark right after template text): then no token boundary matches the segments' bytes.
      if (std::string renormalized; tok_.normalizes_nfc() && NormalizeNfc(text, &renormalized)) {
        return InvalidArgument(
            "a chat message starts with a combining mark that joins the text before it under "
            "this vocabulary's NFC normalization; put a space or letter before the mark");
      }
      PLM_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok_.Encode(text, /*add_special=*/false,
                                                                 /*parse_special=*/false));
      PLM_ASSIGN_OR_RETURN(std::vector<TokenSpan> spans, AlignTokens(tok_, text, ids));
      for (size_t i = 0; i < ids.size(); ++i) {
        // A token takes the flags of every byte it covers (tokens of one unit, such as byte-fallback tokens
        // spelling the "▁" of a space, share the unit's bytes); one that covers none (the space prefix) takes those
        // of the byte that follows it.
        size_t b = begin + spans[i].begin, e = begin + spans[i].end;
        if (b == e) e = std::min(b + 1, end);
        uint8_t flags = 0;
        for (size_t k = b; k < e; ++k) flags |= static_cast<uint8_t>(flags_[k]);
        Push(ids[i], flags);
      }
    }
    run_.clear();
    flags_.clear();
    return Status::Ok();
  }

  const Tokenizer& tok_;
  std::string run_;    // text since the last special token
  std::string flags_;  // per byte of run_: kTrainable | kContent
  bool strip_front_ = false;
  TokenizedChat out_;
  std::vector<uint8_t> from_content_;  // per token
  std::vector<int32_t> markers_;       // special tokens the template used
};

}  // namespace

Result<TokenizedChat> TokenizeChat(const Tokenizer& tokenizer, std::span<const ChatSegment> segments) {
  ChatTokenizer ct(tokenizer);
  ct.Start();
  for (const ChatSegment& seg : segments) PLM_RETURN_IF_ERROR(ct.Add(seg));
  return ct.Finish();
}

}  // namespace pocketlm
