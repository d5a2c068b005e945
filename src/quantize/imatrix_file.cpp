#include "quantize/imatrix_file.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>

#include "base/atomic_file.h"
#include "io/gguf/gguf_reader.h"

namespace pocketlm::quantize {

namespace {

// Longest entry name accepted: GGUF tensor names are at most 64 bytes in ggml; generous for other producers.
constexpr int32_t kMaxNameLength = 4096;

// Sequential little-endian reads over the binary format, each checked against the end of the bytes.
class Cursor {
 public:
  Cursor(const std::vector<uint8_t>& b, const std::string& file) : b_(b), file_(file) {}

  Status I32(int32_t* v, const std::string& field) {
    if (b_.size() - pos_ < 4) return Truncated(field);
    uint32_t u = 0;
    for (int i = 0; i < 4; ++i) u |= static_cast<uint32_t>(b_[pos_ + static_cast<size_t>(i)]) << (8 * i);
    std::memcpy(v, &u, 4);
    pos_ += 4;
    return Status::Ok();
  }
  Status Bytes(size_t n, const std::string& field, const uint8_t** p) {
    if (b_.size() - pos_ < n) return Truncated(field);
    *p = b_.data() + pos_;
    pos_ += n;
    return Status::Ok();
  }
  bool AtEnd() const { return pos_ == b_.size(); }

 private:
  Status Truncated(const std::string& field) const {
    return Corrupt("importance matrix '" + file_ + "' ends inside " + field + " (at byte " + std::to_string(pos_) +
                   " of " + std::to_string(b_.size()) + ")");
  }
  const std::vector<uint8_t>& b_;
  const std::string& file_;
  size_t pos_ = 0;
};

Status NonFinite(const std::string& file, const std::string& entry, size_t i, float v) {
  return Corrupt("importance matrix '" + file + "': entry '" + entry + "' value " + std::to_string(i) + " is " +
                 std::to_string(v) + " (every value must be finite and >= 0)");
}

Result<ImportanceMatrix> ParseBinary(const std::vector<uint8_t>& bytes, const std::string& file) {
  ImportanceMatrix m;
  Cursor c(bytes, file);
  int32_t n_entries = 0;
  PLM_RETURN_IF_ERROR(c.I32(&n_entries, "the entry count"));
  if (n_entries < 1) {
    return Corrupt("importance matrix '" + file + "' has " + std::to_string(n_entries) + " entries (need >= 1)");
  }
  for (int32_t e = 0; e < n_entries; ++e) {
    const std::string where = "entry " + std::to_string(e);
    int32_t len = 0;
    PLM_RETURN_IF_ERROR(c.I32(&len, where + "'s name length"));
    if (len < 1 || len > kMaxNameLength) {
      return Corrupt("importance matrix '" + file + "': " + where + " has a name length of " + std::to_string(len));
    }
    const uint8_t* p = nullptr;
    PLM_RETURN_IF_ERROR(c.Bytes(static_cast<size_t>(len), where + "'s name", &p));
    std::string name(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
    ImatrixEntry entry;
    int32_t n_values = 0;
    PLM_RETURN_IF_ERROR(c.I32(&entry.ncall, "the call count of '" + name + "'"));
    PLM_RETURN_IF_ERROR(c.I32(&n_values, "the value count of '" + name + "'"));
    if (entry.ncall < 0 || n_values < 1) {
      return Corrupt("importance matrix '" + file + "': entry '" + name + "' has " + std::to_string(entry.ncall) +
                     " calls and " + std::to_string(n_values) + " values");
    }
    PLM_RETURN_IF_ERROR(c.Bytes(static_cast<size_t>(n_values) * 4, "the values of '" + name + "'", &p));
    entry.n_values = n_values;
    entry.values.resize(static_cast<size_t>(n_values));
    std::memcpy(entry.values.data(), p, static_cast<size_t>(n_values) * 4);  // little-endian hosts only
    for (size_t i = 0; i < entry.values.size(); ++i) {
      if (!std::isfinite(entry.values[i]) || entry.values[i] < 0) return NonFinite(file, name, i, entry.values[i]);
      // The stored sums were scaled by ncall (llama-imatrix's save_imatrix); llama-quantize's load_imatrix undoes it.
      if (entry.ncall > 0) entry.values[i] /= static_cast<float>(entry.ncall);
    }
    if (!m.entries.emplace(name, std::move(entry)).second) {
      return Corrupt("importance matrix '" + file + "' has two entries named '" + name + "'");
    }
  }
  // The trailer (chunk count, calibration file name) came later: files of older builds end here.
  if (c.AtEnd()) return m;
  PLM_RETURN_IF_ERROR(c.I32(&m.chunk_count, "the chunk count"));
  if (m.chunk_count < 0) {
    return Corrupt("importance matrix '" + file + "' has a chunk count of " + std::to_string(m.chunk_count));
  }
  int32_t len = 0;
  PLM_RETURN_IF_ERROR(c.I32(&len, "the dataset name length"));
  if (len < 0 || len > kMaxNameLength) {
    return Corrupt("importance matrix '" + file + "' has a dataset name length of " + std::to_string(len));
  }
  const uint8_t* p = nullptr;
  PLM_RETURN_IF_ERROR(c.Bytes(static_cast<size_t>(len), "the dataset name", &p));
  m.dataset.assign(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
  return m;
}

Result<ImportanceMatrix> ParseGguf(std::vector<uint8_t> bytes, const std::string& file) {
  PLM_ASSIGN_OR_RETURN(GgufFile g, GgufFile::FromBytes(std::move(bytes), file));
  ImportanceMatrix m;
  PLM_ASSIGN_OR_RETURN(int64_t chunks, g.GetInt("imatrix.chunk_count", 0));
  PLM_ASSIGN_OR_RETURN(int64_t chunk_size, g.GetInt("imatrix.chunk_size", 0));
  for (const auto& [key, v] : {std::pair{"imatrix.chunk_count", chunks}, std::pair{"imatrix.chunk_size", chunk_size}}) {
    if (v < 0 || v > INT32_MAX) {
      return Corrupt("importance matrix '" + file + "': " + key + " is " + std::to_string(v));
    }
  }
  m.chunk_count = static_cast<int>(chunks);
  m.chunk_size = static_cast<int>(chunk_size);
  if (const GgufValue* d = g.Find("imatrix.datasets"); d != nullptr && !d->strings.empty()) {
    m.dataset = std::string(d->strings[0]);
  }
  constexpr std::string_view kSums = ".in_sum2", kCounts = ".counts";
  for (const GgufTensorInfo& t : g.tensors()) {
    if (!t.name.ends_with(kSums)) continue;
    const std::string name(t.name.substr(0, t.name.size() - kSums.size()));
    const GgufTensorInfo* counts = g.FindTensor(name + std::string(kCounts));
    if (counts == nullptr) {
      return Corrupt("importance matrix '" + file + "': '" + std::string(t.name) + "' has no '" + name +
                     std::string(kCounts) + "' beside it");
    }
    if (t.type != DType::kF32 || counts->type != DType::kF32 || t.n_dims > 2 || counts->ne[0] != 1 ||
        counts->n_elements() != t.ne[1] || t.ne[0] < 1 || t.ne[1] < 1) {
      return Corrupt("importance matrix '" + file + "': entry '" + name +
                     "' must be f32 in_sum2 [n_values, n_mat] with f32 counts [1, n_mat]");
    }
    ImatrixEntry e;
    e.n_values = t.ne[0];
    e.n_mat = t.ne[1];
    e.ncall = static_cast<int>(chunks);
    e.values.resize(static_cast<size_t>(t.n_elements()));
    const auto* sums = reinterpret_cast<const float*>(t.data);
    const auto* cnt = reinterpret_cast<const float*>(counts->data);
    for (int64_t j = 0; j < e.n_mat; ++j) {
      float c = 0;
      std::memcpy(&c, cnt + j, 4);
      for (int64_t i = 0; i < e.n_values; ++i) {
        float s = 0;
        std::memcpy(&s, sums + j * e.n_values + i, 4);  // the data section is aligned, the copy keeps UBSan quiet
        const size_t k = static_cast<size_t>(j * e.n_values + i);
        // A matrix no token reached (an unused expert) weighs its columns equally, as llama-quantize does.
        e.values[k] = c > 0 ? s / c : 1.0f;
        if (!std::isfinite(e.values[k]) || e.values[k] < 0) return NonFinite(file, name, k, e.values[k]);
      }
    }
    m.entries.emplace(name, std::move(e));
  }
  if (m.entries.empty()) return Corrupt("importance matrix '" + file + "' (GGUF) has no <name>.in_sum2 tensors");
  return m;
}

}  // namespace

const float* ImportanceMatrix::Find(const std::string& name, int64_t mat) const {
  auto it = entries.find(name);
  if (it == entries.end() || mat < 0 || mat >= it->second.n_mat) return nullptr;
  return it->second.values.data() + mat * it->second.n_values;
}

Result<ImportanceMatrix> ParseImatrix(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) return ParseGguf(bytes, name);
  return ParseBinary(bytes, name);
}

Result<ImportanceMatrix> ReadImatrix(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open importance matrix '" + path + "'");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return IoError("cannot read importance matrix '" + path + "'");
  return ParseImatrix(bytes, path);
}

Status WriteImatrix(const std::string& path, const ImportanceMatrix& m) {
  std::vector<uint8_t> out;
  const auto i32 = [&out](int64_t v) {
    const auto u = static_cast<uint32_t>(static_cast<int32_t>(v));
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(u >> (8 * i)));
  };
  const auto bytes = [&out](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  };
  i32(static_cast<int64_t>(m.entries.size()));
  for (const auto& [name, e] : m.entries) {
    if (e.n_mat != 1) {
      return Unsupported("entry '" + name + "' holds " + std::to_string(e.n_mat) +
                         " matrices; the binary importance-matrix format stores one per entry");
    }
    i32(static_cast<int64_t>(name.size()));
    bytes(name.data(), name.size());
    i32(e.ncall);
    i32(static_cast<int64_t>(e.values.size()));
    // Stored as mean * ncall, the float expression llama-imatrix writes ((sum / count) * ncall).
    for (float v : e.values) {
      const float stored = e.ncall > 0 ? v * static_cast<float>(e.ncall) : v;
      bytes(&stored, sizeof(stored));
    }
  }
  i32(m.chunk_count);
  i32(static_cast<int64_t>(m.dataset.size()));
  bytes(m.dataset.data(), m.dataset.size());
  PLM_ASSIGN_OR_RETURN(AtomicFileWriter w, AtomicFileWriter::Create(path));
  PLM_RETURN_IF_ERROR(w.Write(out.data(), out.size()));
  return w.Commit();
}

}  // namespace pocketlm::quantize
