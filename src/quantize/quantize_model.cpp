#include "quantize/quantize_model.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "base/thread_pool.h"
#include "io/gguf/gguf_stream_writer.h"
#include "tensor/quant/quant.h"

namespace pocketlm::quantize {

namespace {

constexpr uint32_t kQuantizationVersion = 2;        // GGML_QNT_VERSION
constexpr int64_t kChunkValues = int64_t{4} << 20;  // values per chunk of rows (16 MiB as f32)
constexpr uint64_t kCopyChunkBytes = uint64_t{16} << 20;

// The N of "blk.N.", or -1 (sscanf("blk.%d.") in llama.cpp's weight_name_comparer).
int LayerOf(std::string_view name) {
  int layer = -1;
  const std::string s(name);
  if (std::sscanf(s.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

bool IsSplitKey(std::string_view k) {
  return k == "split.no" || k == "split.count" || k == "split.tensors.count";
}

std::string TypeName(DType t) {
  return std::string(DTypeName(t));
}

// The tensor's importance-matrix entry, checked as llama_model_quantize_impl checks it: an entry must cover
// every matrix of the tensor (ne[0] values for each of ne[2]); a type that needs one refuses a tensor without.
Status AttachWeights(const ImportanceMatrix* m, const GgufTensorInfo& src, TensorPlan* t) {
  if (m != nullptr) {
    auto it = m->entries.find(t->name);
    if (it != m->entries.end()) {
      const ImatrixEntry& e = it->second;
      if (e.n_values * e.n_mat != src.ne[0] * src.ne[2]) {
        return InvalidArgument("the importance matrix has " + std::to_string(e.n_values * e.n_mat) +
                               " values for tensor '" + t->name + "', which needs " +
                               std::to_string(src.ne[0] * src.ne[2]) + ": it was computed for another model");
      }
      t->weights = e.values.data();
    }
  }
  // llama.cpp also lets IQ1_M pass for the embedding and output tensors (no entry exists for them), whose
  // quantizer then fails; pocketlm refuses them here instead.
  if (t->weights == nullptr && quant::NeedsImportanceMatrix(t->to)) {
    return InvalidArgument("tensor '" + t->name + "' would be " + TypeName(t->to) +
                           ", which needs an importance matrix" +
                           (m == nullptr ? std::string(" (compute one with the model's calibration)")
                                         : std::string(" and the one given has no entry for it")));
  }
  return Status::Ok();
}

}  // namespace

bool LlamaTensorOrder(std::string_view a, std::string_view b) {
  const int la = LayerOf(a), lb = LayerOf(b);
  if (la != lb) return la < lb;
  return a < b;
}

Result<QuantizePlan> PlanQuantization(const GgufFile& in, const QuantizeOptions& o) {
  QuantizePlan plan;
  plan.preset = FindPreset(o.preset);
  if (plan.preset == nullptr) {
    return InvalidArgument("unknown quantization type '" + o.preset + "'; valid types: " + PresetNames() +
                           " (case does not matter)");
  }
  PLM_ASSIGN_OR_RETURN(int64_t n_split, in.GetInt("split.count", 1));
  if (n_split > 1) {
    return Unsupported("'" + in.path() + "' is one part of a model split into " + std::to_string(n_split) +
                       " files; merge them first (llama-gguf-split --merge)");
  }
  const bool has_imatrix = o.imatrix != nullptr && !o.imatrix->entries.empty();
  PLM_ASSIGN_OR_RETURN(ModelFacts facts, ReadModelFacts(in));
  TypeSelector selector(*plan.preset, std::move(facts), o.overrides, o.pure, has_imatrix);

  std::vector<const GgufTensorInfo*> order;
  for (const auto& t : in.tensors()) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(),
                   [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return LlamaTensorOrder(a->name, b->name); });

  for (const GgufTensorInfo* src : order) {
    TensorPlan t;
    t.src = src;
    t.name = std::string(src->name);
    t.ne.assign(src->ne, src->ne + std::max(1, src->n_dims));
    t.from = t.to = src->type;
    if (IsQuantizable(t.name, src->n_dims)) {
      PLM_ASSIGN_OR_RETURN(TypeChoice c, selector.Choose(t.name, src->ne[0]));
      t.to = c.type;
      t.fallback = c.fallback;
      t.note = std::move(c.note);
    }
    t.convert = t.to != t.from;
    if (t.convert) {
      if (GetDTypeInfo(t.from).quantized && !o.allow_requantize) {
        return InvalidArgument("'" + in.path() + "' is already quantized (tensor '" + t.name + "' is " +
                               TypeName(t.from) + "); quantizing it again loses more quality than quantizing the " +
                               "F16/F32 original: start from that, or allow requantization");
      }
      if (quant::GetQuantTraits(t.from).dequantize_row == nullptr) {
        return Unsupported("tensor '" + t.name + "' is " + TypeName(t.from) + ", which pocketlm cannot read yet");
      }
      PLM_RETURN_IF_ERROR(AttachWeights(o.imatrix, *src, &t));
    }
    t.bytes_in = src->nbytes;
    const int64_t rows = src->ne[0] > 0 ? src->n_elements() / src->ne[0] : 0;
    t.bytes_out = *RowBytes(t.to, static_cast<uint64_t>(src->ne[0])) * static_cast<uint64_t>(rows);
    plan.bytes_in += t.bytes_in;
    plan.bytes_out += t.bytes_out;
    plan.n_weights += static_cast<uint64_t>(src->n_elements());
    plan.tensors.push_back(std::move(t));
  }
  return plan;
}

namespace {

class Runner {
 public:
  Runner(const QuantizePlan& plan, GgufStreamWriter& w, int n_threads, ProgressFn fn, void* user)
      : plan_(plan), w_(w), pool_(n_threads), fn_(fn), user_(user) {
    progress_.n_tensors = plan.tensors.size();
    progress_.bytes_total = plan.bytes_in;
  }

  Status Run() {
    for (size_t i = 0; i < plan_.tensors.size(); ++i) {
      const TensorPlan& t = plan_.tensors[i];
      progress_.tensor_index = i;
      progress_.tensor = &t;
      progress_.tensor_done = false;
      Status s = t.convert ? Convert(t) : Copy(t);
      PLM_RETURN_IF_ERROR(s.WithContext("tensor '" + t.name + "'"));
      progress_.tensor_done = true;
      Report(0);
    }
    return Status::Ok();
  }

 private:
  void Report(uint64_t more_bytes) {
    progress_.bytes_done += more_bytes;
    if (fn_ != nullptr) fn_(progress_, user_);
  }

  Status Copy(const TensorPlan& t) {
    for (uint64_t at = 0; at < t.bytes_in; at += kCopyChunkBytes) {
      const uint64_t n = std::min(kCopyChunkBytes, t.bytes_in - at);
      PLM_RETURN_IF_ERROR(w_.Append(t.src->data + at, n));
      Report(n);
    }
    return Status::Ok();
  }

  // Rows are independent, so each thread converts its share of a chunk straight into the output buffer.
  Status Convert(const TensorPlan& t) {
    const int64_t ne0 = t.ne[0];
    if (ne0 == 0) return Status::Ok();
    const int64_t rows = t.src->n_elements() / ne0;
    const quant::QuantTraits& from = quant::GetQuantTraits(t.from);
    const quant::QuantTraits& to = quant::GetQuantTraits(t.to);
    const uint64_t in_row = *RowBytes(t.from, static_cast<uint64_t>(ne0));
    const uint64_t out_row = *RowBytes(t.to, static_cast<uint64_t>(ne0));
    const int64_t chunk = std::min(rows, std::max<int64_t>(pool_.size(), kChunkValues / ne0));
    std::vector<float> f32(t.from == DType::kF32 ? 0 : static_cast<size_t>(chunk * ne0));  // (chunk, ne0)
    std::vector<uint8_t> out(static_cast<size_t>(chunk) * out_row);                        // (chunk, out_row)
    const bool weighted = t.weights != nullptr && to.quantize_row_weighted != nullptr;
    // Weighted rows decoded again (chunk, ne0): a block whose importance is all zero gets a 0/0 scale in ggml's
    // quantizers, which llama-quantize's validation refuses; so does this.
    std::vector<float> check(weighted ? static_cast<size_t>(chunk * ne0) : 0);
    // The lowest row index for which `flag` is raised, across threads.
    const auto lowest = [](std::atomic<int64_t>& flag, int64_t row) {
      int64_t cur = flag.load();
      while (row < cur && !flag.compare_exchange_weak(cur, row)) {
      }
    };
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
      const int64_t n = std::min(chunk, rows - r0);
      std::atomic<int64_t> bad_row{rows}, bad_out{rows};
      pool_.ParallelFor(static_cast<size_t>(n), [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) {
          const uint8_t* src = t.src->data + static_cast<uint64_t>(r0 + static_cast<int64_t>(i)) * in_row;
          const float* x = nullptr;
          if (t.from == DType::kF32) {
            x = reinterpret_cast<const float*>(src);  // tensor data is aligned to >= 32 bytes
          } else {
            float* d = f32.data() + i * static_cast<size_t>(ne0);
            from.dequantize_row(src, d, ne0);
            x = d;
          }
          bool finite = true;
          for (int64_t k = 0; k < ne0; ++k) finite &= std::isfinite(x[k]);
          if (!finite) {
            lowest(bad_row, r0 + static_cast<int64_t>(i));
            continue;
          }
          uint8_t* dst = out.data() + i * out_row;
          if (!weighted) {
            to.quantize_row(x, dst, ne0);
            continue;
          }
          const int64_t mat = (r0 + static_cast<int64_t>(i)) / t.ne[1];  // rows of ne[2] matrices back to back
          to.quantize_row_weighted(x, dst, ne0, t.weights + mat * ne0);
          float* back = check.data() + i * static_cast<size_t>(ne0);
          to.dequantize_row(dst, back, ne0);
          bool ok = true;
          for (int64_t k = 0; k < ne0; ++k) ok &= std::isfinite(back[k]);
          if (!ok) lowest(bad_out, r0 + static_cast<int64_t>(i));
        }
      });
      if (bad_row.load() < rows) {
        return InvalidArgument("row " + std::to_string(bad_row.load()) +
                               " holds NaN or infinite values; the input model is broken");
      }
      if (bad_out.load() < rows) {
        return InvalidArgument("row " + std::to_string(bad_out.load()) + " quantized to NaN: the importance matrix " +
                               "gives a whole block of its columns zero weight (recompute it on a longer or more "
                               "varied text, or quantize this tensor without it)");
      }
      PLM_RETURN_IF_ERROR(w_.Append(out.data(), static_cast<size_t>(n) * out_row));
      Report(static_cast<uint64_t>(n) * in_row);
    }
    return Status::Ok();
  }

  const QuantizePlan& plan_;
  GgufStreamWriter& w_;
  ThreadPool pool_;
  ProgressFn fn_;
  void* user_;
  QuantizeProgress progress_;
};

// What llama-quantize records about the matrix (its kv overrides, set after general.file_type): the file as given
// (at most 127 bytes), the dataset when known, the entry count and the chunk count when known, integers as i32.
void AddImatrixKeys(const ImportanceMatrix& m, const std::string& file,
                    std::vector<std::pair<std::string, GgufOwnedValue>>* kvs) {
  const auto set = [kvs](const std::string& key, GgufOwnedValue v) {
    std::erase_if(*kvs, [&](const auto& kv) { return kv.first == key; });
    kvs->emplace_back(key, std::move(v));
  };
  GgufOwnedValue str;
  str.type = GgufType::kString;
  str.str = file.substr(0, 127);
  set("quantize.imatrix.file", str);
  if (!m.dataset.empty()) {
    str.str = m.dataset.substr(0, 127);
    set("quantize.imatrix.dataset", str);
  }
  GgufOwnedValue i32;
  i32.type = GgufType::kI32;
  i32.i = static_cast<int64_t>(m.entries.size());
  set("quantize.imatrix.entries_count", i32);
  if (m.chunk_count > 0) {
    i32.i = m.chunk_count;
    set("quantize.imatrix.chunks_count", i32);
  }
}

Status CheckPaths(const std::string& in_path, const std::string& out_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(out_path, ec)) {
    return InvalidArgument("output '" + out_path + "' is a directory; give a file name");
  }
  if (fs::exists(out_path, ec) && fs::equivalent(in_path, out_path, ec)) {
    return InvalidArgument("output '" + out_path + "' is the input file; write to another path");
  }
  return Status::Ok();
}

}  // namespace

Result<QuantizeSummary> QuantizeModel(const std::string& in_path, const std::string& out_path, const QuantizeOptions& o,
                                      ProgressFn progress, void* user_data) {
  const auto start = std::chrono::steady_clock::now();
  if (o.n_threads < 1) return InvalidArgument("threads must be at least 1");
  PLM_RETURN_IF_ERROR(CheckPaths(in_path, out_path));
  PLM_ASSIGN_OR_RETURN(GgufFile in, GgufFile::Open(in_path));
  PLM_ASSIGN_OR_RETURN(QuantizePlan plan, PlanQuantization(in, o));

  // Metadata in the input's order; quantization_version and file_type removed and appended (gguf_set_val_u32).
  std::vector<std::pair<std::string, GgufOwnedValue>> kvs;
  for (const auto& kv : in.kvs()) {
    if (IsSplitKey(kv.key) || kv.key == "general.quantization_version" || kv.key == "general.file_type") continue;
    kvs.emplace_back(std::string(kv.key), GgufOwnedValue::FromView(kv.value));
  }
  GgufOwnedValue u32;
  u32.type = GgufType::kU32;
  u32.u = kQuantizationVersion;
  kvs.emplace_back("general.quantization_version", u32);
  u32.u = static_cast<uint32_t>(plan.preset->ftype);
  kvs.emplace_back("general.file_type", u32);
  if (o.imatrix != nullptr && !o.imatrix->entries.empty()) AddImatrixKeys(*o.imatrix, o.imatrix_name, &kvs);

  std::vector<GgufTensorDecl> decls;
  for (const auto& t : plan.tensors) decls.push_back({t.name, t.to, t.ne});
  PLM_ASSIGN_OR_RETURN(GgufStreamWriter w, GgufStreamWriter::Create(out_path, static_cast<uint32_t>(in.alignment()),
                                                                    kvs, std::move(decls)));
  Runner runner(plan, w, o.n_threads, progress, user_data);
  PLM_RETURN_IF_ERROR(runner.Run());
  PLM_RETURN_IF_ERROR(w.Commit());

  QuantizeSummary s;
  s.preset = plan.preset;
  s.bytes_in = plan.bytes_in;
  s.bytes_out = plan.bytes_out;
  std::error_code ec;
  s.file_bytes_out = std::filesystem::file_size(out_path, ec);
  s.n_weights = plan.n_weights;
  s.n_tensors = plan.tensors.size();
  for (const auto& t : plan.tensors) {
    s.n_converted += t.convert ? 1 : 0;
    s.n_fallback += t.fallback ? 1 : 0;
  }
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s;
}

}  // namespace pocketlm::quantize
