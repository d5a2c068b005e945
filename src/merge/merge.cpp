#include "merge/merge.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <system_error>

#include "base/thread_pool.h"
#include "io/gguf/gguf_stream_writer.h"
#include "model/context.h"
#include "ops/matmul.h"
#include "tensor/quant/quant.h"
#include "train/eval.h"

namespace pocketlm {

namespace {

constexpr int64_t kChunkValues = int64_t{1} << 20;  // values per chunk of rows (4 MiB as f32)
constexpr uint64_t kCopyChunkBytes = uint64_t{16} << 20;
// Below this mean KL (nats per position) the adapters do not measurably change the text's predictions, and the
// ratio kl_merged / kl_base is noise over noise.
constexpr double kNoEffectKl = 1e-9;

// One low-rank term on a base tensor: s * B A.
struct Term {
  const LoraPair* pair;
  float scale;  // effective: user scale * alpha / r
};

// The base tensors that receive terms (scale 0 terms dropped), by name.
using TermMap = std::map<std::string_view, std::vector<Term>>;

Result<TermMap> CollectTerms(const GgufFile& base, const std::vector<ActiveLora>& adapters) {
  TermMap terms;
  for (const ActiveLora& a : adapters) {
    if (a.adapter == nullptr) return InvalidArgument("null adapter");
    if (!std::isfinite(a.scale)) return InvalidArgument("adapter '" + a.adapter->path() + "': the scale is not finite");
    PLM_RETURN_IF_ERROR(a.adapter->CheckAgainst(base));
    for (const auto& [name, pair] : a.adapter->pairs()) {
      const float s = a.adapter->EffectiveScale(pair, a.scale);
      if (s != 0.0f) terms[name].push_back({&pair, s});
    }
  }
  for (const auto& [name, list] : terms) {
    const GgufTensorInfo* w = base.FindTensor(name);
    const quant::QuantTraits& tr = quant::GetQuantTraits(w->type);
    if (tr.dequantize_row == nullptr || tr.quantize_row == nullptr) {
      return Unsupported("tensor '" + std::string(name) + "' of '" + base.path() + "' is stored as " +
                         std::string(DTypeName(w->type)) + ", which pocketlm cannot " +
                         (tr.dequantize_row == nullptr ? "read" : "write") +
                         " yet: merge into an F16 or F32 base and quantize the result after");
    }
  }
  return terms;
}

bool IsPlainFloat(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16;
}

std::string TypeList(const std::vector<DType>& types, bool quantized_only) {
  std::string s;
  for (DType t : types) {
    if (quantized_only && IsPlainFloat(t)) continue;
    s += (s.empty() ? "" : ", ") + std::string(DTypeName(t));
  }
  return s;
}

class MergeWriter {
 public:
  MergeWriter(const GgufFile& base, const TermMap& terms, GgufStreamWriter& w, int n_threads, const MergeProgressFn& fn)
      : base_(base), terms_(terms), w_(w), pool_(n_threads), fn_(fn) {
    progress_.n_tensors = base.tensors().size();
    for (const auto& t : base.tensors()) progress_.bytes_total += t.nbytes;
  }

  Status Run() {
    for (size_t i = 0; i < base_.tensors().size(); ++i) {
      const GgufTensorInfo& t = base_.tensors()[i];
      const auto it = terms_.find(t.name);
      progress_.tensor_index = i;
      progress_.tensor_name = t.name;
      progress_.merged = it != terms_.end();
      progress_.tensor_done = false;
      Status s = progress_.merged ? Merge(t, it->second) : Copy(t);
      PLM_RETURN_IF_ERROR(s.WithContext("tensor '" + std::string(t.name) + "'"));
      progress_.tensor_done = true;
      Report(0);
    }
    return Status::Ok();
  }

 private:
  void Report(uint64_t more_bytes) {
    progress_.bytes_done += more_bytes;
    if (fn_) fn_(progress_);
  }

  Status Copy(const GgufTensorInfo& t) {
    for (uint64_t at = 0; at < t.nbytes; at += kCopyChunkBytes) {
      const uint64_t n = std::min(kCopyChunkBytes, t.nbytes - at);
      PLM_RETURN_IF_ERROR(w_.Append(t.data + at, n));
      Report(n);
    }
    return Status::Ok();
  }

  // Output row o: W'[o, :] = W[o, :] + sum over terms of s * sum_k B[o, k] * A[k, :], in f32, then stored in W's
  // type. The low-rank sum is formed first and added to W once, so a small update is not rounded against W's
  // magnitude term by term. Rows are independent: each thread merges its share of a chunk into the output buffer.
  Status Merge(const GgufTensorInfo& t, const std::vector<Term>& terms) {
    const int64_t n_in = t.ne[0], n_out = t.ne[1];
    const quant::QuantTraits& tr = quant::GetQuantTraits(t.type);
    const uint64_t row_bytes = *RowBytes(t.type, static_cast<uint64_t>(n_in));
    // The A factors as f32: per term (r, n_in) row-major, back to back; offsets[i] is term i's start.
    std::vector<size_t> offsets;
    int64_t max_rank = 0;
    size_t total = 0;
    for (const Term& term : terms) {
      offsets.push_back(total);
      total += static_cast<size_t>(term.pair->rank() * n_in);
      max_rank = std::max(max_rank, term.pair->rank());
    }
    std::vector<float> a(total);  // (sum of ranks, n_in)
    for (size_t i = 0; i < terms.size(); ++i) {
      for (int64_t k = 0; k < terms[i].pair->rank(); ++k) {
        DequantizeRow(terms[i].pair->a, k, a.data() + offsets[i] + static_cast<size_t>(k * n_in));
      }
    }
    const int64_t chunk = std::min(n_out, std::max<int64_t>(pool_.size(), kChunkValues / std::max<int64_t>(n_in, 1)));
    std::vector<float> rows(static_cast<size_t>(chunk * n_in));        // (chunk, n_in) merged rows in f32
    std::vector<uint8_t> out(static_cast<size_t>(chunk) * row_bytes);  // (chunk, row_bytes) in W's type
    for (int64_t r0 = 0; r0 < n_out; r0 += chunk) {
      const int64_t n = std::min(chunk, n_out - r0);
      std::atomic<int64_t> bad_row{n_out};
      pool_.ParallelFor(static_cast<size_t>(n), [&](size_t begin, size_t end) {
        std::vector<float> delta(static_cast<size_t>(n_in));  // (n_in) the low-rank sum of one row
        std::vector<float> b(static_cast<size_t>(max_rank));  // (r) row o of B
        for (size_t i = begin; i < end; ++i) {
          const int64_t o = r0 + static_cast<int64_t>(i);
          float* w = rows.data() + i * static_cast<size_t>(n_in);
          tr.dequantize_row(t.data + static_cast<uint64_t>(o) * row_bytes, w, n_in);
          std::fill(delta.begin(), delta.end(), 0.0f);
          for (size_t ti = 0; ti < terms.size(); ++ti) {
            const LoraPair& p = *terms[ti].pair;
            DequantizeRow(p.b, o, b.data());
            for (int64_t k = 0; k < p.rank(); ++k) {
              const float c = terms[ti].scale * b[static_cast<size_t>(k)];
              const float* ak = a.data() + offsets[ti] + static_cast<size_t>(k * n_in);
              for (int64_t j = 0; j < n_in; ++j) delta[static_cast<size_t>(j)] += c * ak[j];
            }
          }
          bool finite = true;
          for (int64_t j = 0; j < n_in; ++j) {
            w[j] += delta[static_cast<size_t>(j)];
            finite &= std::isfinite(w[j]);
          }
          if (!finite) {
            int64_t cur = bad_row.load();
            while (o < cur && !bad_row.compare_exchange_weak(cur, o)) {
            }
            continue;
          }
          tr.quantize_row(w, out.data() + i * row_bytes, n_in);
        }
      });
      if (bad_row.load() < n_out) {
        return InvalidArgument("row " + std::to_string(bad_row.load()) +
                               " holds NaN or infinite values after merging (in the base, the adapter, or from a "
                               "scale too large)");
      }
      PLM_RETURN_IF_ERROR(w_.Append(out.data(), static_cast<size_t>(n) * row_bytes));
      Report(static_cast<uint64_t>(n) * row_bytes);
    }
    return Status::Ok();
  }

  const GgufFile& base_;
  const TermMap& terms_;
  GgufStreamWriter& w_;
  ThreadPool pool_;
  const MergeProgressFn& fn_;
  MergeProgress progress_;
};

Status CheckOutputPath(const std::string& out_path, const std::string& other, const char* what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(out_path, ec) && fs::equivalent(other, out_path, ec)) {
    return InvalidArgument("output '" + out_path + "' is the " + what + "; write to another path");
  }
  return Status::Ok();
}

// Removes a file at scope exit unless released.
class RemoveOnExit {
 public:
  explicit RemoveOnExit(std::string path) : path_(std::move(path)) {}
  ~RemoveOnExit() {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove(path_, ec);
    }
  }
  RemoveOnExit(const RemoveOnExit&) = delete;
  RemoveOnExit& operator=(const RemoveOnExit&) = delete;
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

}  // namespace

Status WriteMergedModel(const GgufFile& base, const std::vector<ActiveLora>& adapters, const std::string& out_path,
                        int n_threads, const MergeProgressFn& progress) {
  if (n_threads < 1) return InvalidArgument("threads must be at least 1");
  if (adapters.empty()) return InvalidArgument("nothing to merge: give at least one adapter");
  PLM_ASSIGN_OR_RETURN(TermMap terms, CollectTerms(base, adapters));
  // Metadata and tensor directory exactly as the base has them (types and shapes do not change).
  std::vector<std::pair<std::string, GgufOwnedValue>> kvs;
  for (const auto& kv : base.kvs()) kvs.emplace_back(std::string(kv.key), GgufOwnedValue::FromView(kv.value));
  std::vector<GgufTensorDecl> decls;
  for (const auto& t : base.tensors()) {
    decls.push_back({std::string(t.name), t.type, std::vector<int64_t>(t.ne, t.ne + std::max(1, t.n_dims))});
  }
  PLM_ASSIGN_OR_RETURN(GgufStreamWriter w, GgufStreamWriter::Create(out_path, static_cast<uint32_t>(base.alignment()),
                                                                    kvs, std::move(decls)));
  MergeWriter runner(base, terms, w, n_threads, progress);
  PLM_RETURN_IF_ERROR(runner.Run());
  return w.Commit();
}

Result<MergeQuality> MeasureMerge(const Model& base, const Model& merged, const std::vector<ActiveLora>& adapters,
                                  const std::string& text, int n_ctx, int n_threads) {
  ContextParams cp;
  cp.n_ctx = n_ctx;
  if (n_threads < 1 || n_threads > 512) return InvalidArgument("thread count must be 1..512");
  cp.pool = std::make_shared<ThreadPool>(n_threads);  // the three contexts take turns
  if (base.config().n_ctx_train > 0) cp.n_ctx = std::min(cp.n_ctx, base.config().n_ctx_train);
  PLM_ASSIGN_OR_RETURN(std::vector<TrainExample> windows, TextWindows(text, base.tokenizer(), cp.n_ctx));
  PLM_ASSIGN_OR_RETURN(std::unique_ptr<Context> ref, Context::Create(base, cp));
  PLM_RETURN_IF_ERROR(ref->SetAdapters(adapters));
  KlResult kb, km;
  {
    PLM_ASSIGN_OR_RETURN(std::unique_ptr<Context> plain, Context::Create(base, cp));
    PLM_ASSIGN_OR_RETURN(kb, KlDivergence(*plain, *ref, windows));
  }
  {
    PLM_ASSIGN_OR_RETURN(std::unique_ptr<Context> m, Context::Create(merged, cp));
    PLM_ASSIGN_OR_RETURN(km, KlDivergence(*m, *ref, windows));
  }
  MergeQuality q;
  q.kl_base = kb.MeanKl();
  q.kl_merged = km.MeanKl();
  q.n_positions = km.n_positions;
  q.top1_base = static_cast<double>(kb.top1_agree) / static_cast<double>(kb.n_positions);
  q.top1_merged = static_cast<double>(km.top1_agree) / static_cast<double>(km.n_positions);
  if (q.kl_base <= kNoEffectKl) {
    // Nothing to keep: the merge passes if it did not move the model either.
    q.no_effect = true;
    q.kept = q.kl_merged <= kNoEffectKl ? 1.0 : 0.0;
  } else {
    q.kept = std::clamp(1.0 - q.kl_merged / q.kl_base, 0.0, 1.0);
  }
  return q;
}

Result<MergeSummary> MergeAdapters(const std::string& base_path, const std::vector<ActiveLora>& adapters,
                                   const std::string& out_path, const MergeOptions& o,
                                   const MergeProgressFn& progress) {
  const auto start = std::chrono::steady_clock::now();
  if (o.n_threads < 1) return InvalidArgument("threads must be at least 1");
  if (!(o.min_kept >= 0.0 && o.min_kept <= 1.0)) {
    return InvalidArgument("the minimum kept fraction must be between 0 and 1 (got " + std::to_string(o.min_kept) +
                           ")");
  }
  if (o.measure_ctx < 2) return InvalidArgument("the measurement window must hold at least 2 tokens");
  if (adapters.empty()) return InvalidArgument("nothing to merge: give at least one adapter");
  std::error_code ec;
  if (std::filesystem::is_directory(out_path, ec)) {
    return InvalidArgument("output '" + out_path + "' is a directory; give a file name");
  }
  PLM_RETURN_IF_ERROR(CheckOutputPath(out_path, base_path, "base model"));
  for (const ActiveLora& a : adapters) {
    if (a.adapter == nullptr) return InvalidArgument("null adapter");
    PLM_RETURN_IF_ERROR(CheckOutputPath(out_path, a.adapter->path(), "adapter"));
  }
  PLM_ASSIGN_OR_RETURN(std::unique_ptr<Model> base, Model::Load(base_path));
  PLM_ASSIGN_OR_RETURN(TermMap terms, CollectTerms(base->file(), adapters));

  MergeSummary s;
  s.n_tensors = base->file().tensors().size();
  for (const auto& t : base->file().tensors()) {
    if (!terms.contains(t.name)) continue;
    ++s.n_merged;
    if (std::find(s.merged_types.begin(), s.merged_types.end(), t.type) == s.merged_types.end()) {
      s.merged_types.push_back(t.type);
    }
    s.requantized |= !IsPlainFloat(t.type);
  }

  // Written next to the output under a temp name, measured, and renamed onto it only when accepted.
  const std::string staged = out_path + ".tmp-unverified-" + std::to_string(::getpid());
  RemoveOnExit cleanup(staged);
  PLM_RETURN_IF_ERROR(WriteMergedModel(base->file(), adapters, staged, o.n_threads, progress));

  MergeProgress p;
  p.n_tensors = s.n_tensors;
  p.stage = MergeProgress::Stage::kMeasuring;
  if (progress) progress(p);
  {
    PLM_ASSIGN_OR_RETURN(std::unique_ptr<Model> merged, Model::Load(staged));
    const std::string& text = o.text.empty() ? std::string(kDefaultMergeText) : o.text;
    auto q = MeasureMerge(*base, *merged, adapters, text, o.measure_ctx, o.n_threads);
    if (!q.ok()) return q.status().WithContext("measuring the merge");
    s.quality = q.value();
  }  // the merged file is unmapped before it is renamed or removed
  p.stage = MergeProgress::Stage::kMeasured;
  p.summary = &s;
  if (progress) progress(p);

  if (s.requantized && s.quality.kept < o.min_kept) {
    if (!o.force) {
      char buf[512];
      std::snprintf(buf, sizeof(buf),
                    "the adapters' effect does not survive requantization to %s: the merged model keeps %.1f%% of "
                    "it (mean KL from base+adapters over %lld positions: merged %.6f, base %.6f nats), below the "
                    "minimum %.1f%%; merge into an F16 base and quantize the result after, or force the merge to "
                    "write it anyway",
                    TypeList(s.merged_types, true).c_str(), 100.0 * s.quality.kept,
                    static_cast<long long>(s.quality.n_positions), s.quality.kl_merged, s.quality.kl_base,
                    100.0 * o.min_kept);
      return InvalidArgument(buf);
    }
    s.below_min_kept = true;
  }
  std::filesystem::rename(staged, out_path, ec);
  if (ec) return IoError("cannot rename '" + staged + "' to '" + out_path + "': " + ec.message());
  cleanup.Release();
  s.file_bytes = std::filesystem::file_size(out_path, ec);
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s;
}

}  // namespace pocketlm
