// JSONL reading: lines, skip policy and statistics. The per-line work is in example_builder.cpp.
#include "train/data/dataset.h"

#include <algorithm>

#include "base/mapped_file.h"
#include "train/data/example_builder.h"

namespace pocketlm {

std::string_view SkipReasonName(SkipReason reason) {
  switch (reason) {
    case SkipReason::kInvalidUtf8: return "invalid UTF-8";
    case SkipReason::kInvalidJson: return "invalid JSON";
    case SkipReason::kBadFields: return "bad fields";
    case SkipReason::kUnknownRole: return "unknown role";
    case SkipReason::kBadConversation: return "role order";
    case SkipReason::kSpecialTokenText: return "special-token text";
    case SkipReason::kNoTrainableTokens: return "nothing to train on";
    case SkipReason::kTooLong: return "too long";
    case SkipReason::kCount: break;
  }
  return "unknown";
}

int64_t DatasetStats::skipped_total() const {
  int64_t n = 0;
  for (int64_t s : skipped) n += s;
  return n;
}

std::string DatasetStats::Summary() const {
  std::string out = std::to_string(lines) + " lines: " + std::to_string(examples) + " examples, " +
                    std::to_string(tokens) + " tokens (" + std::to_string(trainable_tokens) + " trained on)";
  if (skipped_total() == 0) return out;
  out += "; skipped " + std::to_string(skipped_total()) + " lines (";
  bool first = true;
  for (int i = 0; i < kSkipReasonCount; ++i) {
    if (skipped[i] == 0) continue;
    out += (first ? "" : ", ") + std::string(SkipReasonName(static_cast<SkipReason>(i))) + " " +
           std::to_string(skipped[i]);
    first = false;
  }
  out += ")";
  for (const std::string& m : messages) out += "\n  " + m;
  if (skipped_total() > static_cast<int64_t>(messages.size())) {
    out += "\n  ... and " + std::to_string(skipped_total() - static_cast<int64_t>(messages.size())) + " more";
  }
  return out;
}

namespace {

bool IsBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r\f\v") == std::string_view::npos;
}

}  // namespace

Result<Dataset> ParseJsonlDataset(std::string_view contents, std::string_view name, const Tokenizer& tokenizer,
                                  const DatasetOptions& options) {
  Dataset ds;
  DatasetStats& st = ds.stats;
  data_internal::ExampleBuilder builder(tokenizer, options);
  const std::string file(name);
  size_t pos = contents.starts_with("\xEF\xBB\xBF") ? 3 : 0;  // a UTF-8 byte order mark some editors write
  while (pos < contents.size()) {
    const size_t nl = contents.find('\n', pos);
    const size_t end = nl == std::string_view::npos ? contents.size() : nl;
    std::string_view line = contents.substr(pos, end - pos);
    pos = end + 1;
    ++st.lines;
    if (IsBlank(line)) {
      ++st.empty_lines;
      continue;
    }
    if (line.ends_with('\r')) line.remove_suffix(1);  // CRLF files
    auto outcome = builder.Build(line);
    if (auto* e = std::get_if<data_internal::LineError>(&outcome)) {
      if (e->fatal) return InvalidArgument(file + ": " + e->what);
      std::string msg = file + ":" + std::to_string(st.lines) + ": " + e->what;
      if (options.strict) return InvalidArgument(std::move(msg));
      ++st.skipped[static_cast<int>(e->reason)];
      if (st.messages.size() < static_cast<size_t>(std::max(options.max_messages, 0))) {
        st.messages.push_back(std::move(msg));
      }
      continue;
    }
    TrainExample& ex = std::get<TrainExample>(outcome);
    ++st.examples;
    st.tokens += static_cast<int64_t>(ex.tokens.size());
    for (uint8_t t : ex.trainable) st.trainable_tokens += t;
    ds.examples.push_back(std::move(ex));
  }
  if (ds.examples.empty()) {
    std::string why = st.skipped_total() == 0
                          ? "it has no non-empty line"
                          : std::to_string(st.skipped_total()) +
                                " lines skipped, the first: " + (st.messages.empty() ? "" : st.messages[0]);
    return InvalidArgument(file + ": no usable training example (" + why + ")");
  }
  return ds;
}

Result<Dataset> LoadJsonlDataset(const std::string& path, const Tokenizer& tokenizer, const DatasetOptions& options) {
  PLM_ASSIGN_OR_RETURN(MappedFile f, MappedFile::Open(path));
  const std::string_view contents =
      f.size() == 0 ? std::string_view() : std::string_view(reinterpret_cast<const char*>(f.data()), f.size());
  return ParseJsonlDataset(contents, path, tokenizer, options);
}

}  // namespace pocketlm
