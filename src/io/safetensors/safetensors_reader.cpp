#include "io/safetensors/safetensors_reader.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "tensor/half.h"

namespace pocketlm {

namespace {

using Json = nlohmann::json;

struct StDTypeInfo {
  StDType type;
  std::string_view name;
  uint32_t size;
};

// Names and sizes as in safetensors/src/tensor.rs (enum Dtype, Dtype::size).
constexpr StDTypeInfo kStDTypes[] = {
    {StDType::kBool, "BOOL", 1},      {StDType::kU8, "U8", 1},          {StDType::kI8, "I8", 1},
    {StDType::kF8E5M2, "F8_E5M2", 1}, {StDType::kF8E4M3, "F8_E4M3", 1}, {StDType::kI16, "I16", 2},
    {StDType::kU16, "U16", 2},        {StDType::kF16, "F16", 2},        {StDType::kBF16, "BF16", 2},
    {StDType::kI32, "I32", 4},        {StDType::kU32, "U32", 4},        {StDType::kF32, "F32", 4},
    {StDType::kF64, "F64", 8},        {StDType::kI64, "I64", 8},        {StDType::kU64, "U64", 8},
};

const StDTypeInfo& Info(StDType t) {
  return kStDTypes[static_cast<size_t>(t)];
}

std::string KnownDTypes() {
  std::string s;
  for (const auto& d : kStDTypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

// Headers are a flat object of small objects: {"t": {"shape": [..]}} reaches depth 2 at the shape array. Deeper
// nesting is refused before it is built (a 100 MB header of "[[[[..." must not turn into a deep DOM).
constexpr int kMaxJsonDepth = 3;

// Parses the header JSON, rejecting duplicate keys in any object (nlohmann keeps the last one silently, which would
// let two entries claim one name). Never throws.
Status ParseHeaderJson(const uint8_t* p, size_t n, const std::string& file, Json* out) {
  std::vector<std::unordered_set<std::string>> keys;  // one set per open object
  std::string duplicate;
  bool too_deep = false;
  auto cb = [&](int depth, Json::parse_event_t ev, Json& parsed) -> bool {
    switch (ev) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (depth > kMaxJsonDepth) {
          too_deep = true;
          return false;
        }
        if (ev == Json::parse_event_t::object_start) keys.emplace_back();
        return true;
      case Json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        return true;
      case Json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string() && !keys.back().insert(parsed.get<std::string>()).second &&
            duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        return true;
      default: return true;
    }
  };
  try {
    *out = Json::parse(p, p + n, cb, /*allow_exceptions=*/true);
  } catch (const Json::exception& e) {
    return Corrupt("safetensors file '" + file + "': the header is not valid JSON (" + e.what() + ")");
  }
  if (too_deep) return Corrupt("safetensors file '" + file + "': the header JSON is nested too deeply");
  if (!duplicate.empty()) {
    return Corrupt("safetensors file '" + file + "': the header names '" + duplicate + "' twice");
  }
  return Status::Ok();
}

// A non-negative JSON integer that fits in int64 (shapes and offsets); false for floats, negatives and others.
bool GetCount(const Json& j, uint64_t* v) {
  if (!j.is_number_unsigned()) return false;  // nlohmann stores non-negative integer literals as unsigned
  *v = j.get<uint64_t>();
  return *v <= static_cast<uint64_t>(INT64_MAX);
}

}  // namespace

std::string_view StDTypeName(StDType t) {
  return Info(t).name;
}
uint32_t StDTypeSize(StDType t) {
  return Info(t).size;
}

std::optional<StDType> ParseStDType(std::string_view name) {
  for (const auto& d : kStDTypes) {
    if (d.name == name) return d.type;
  }
  return std::nullopt;
}

std::optional<DType> StDTypeToDType(StDType t) {
  switch (t) {
    case StDType::kF32: return DType::kF32;
    case StDType::kF16: return DType::kF16;
    case StDType::kBF16: return DType::kBF16;
    default: return std::nullopt;
  }
}

std::optional<StDType> DTypeToStDType(DType t) {
  switch (t) {
    case DType::kF32: return StDType::kF32;
    case DType::kF16: return StDType::kF16;
    case DType::kBF16: return StDType::kBF16;
    default: return std::nullopt;
  }
}

int64_t StTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string StShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Result<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  SafetensorsFile f;
  f.name_ = path;
  PLM_ASSIGN_OR_RETURN(MappedFile m, MappedFile::Open(path));
  f.mapping_ = std::make_unique<MappedFile>(std::move(m));
  PLM_RETURN_IF_ERROR(f.Parse(f.mapping_->data(), f.mapping_->size()));
  return f;
}

Result<SafetensorsFile> SafetensorsFile::FromBytes(std::vector<uint8_t> bytes, const std::string& name) {
  SafetensorsFile f;
  f.name_ = name;
  f.bytes_ = std::make_unique<std::vector<uint8_t>>(std::move(bytes));
  PLM_RETURN_IF_ERROR(f.Parse(f.bytes_->data(), f.bytes_->size()));
  return f;
}

Status SafetensorsFile::Parse(const uint8_t* data, size_t size) {
  size_ = size;
  const std::string where = "safetensors file '" + name_ + "'";
  if (size < 8) {
    return Corrupt(where + " is " + std::to_string(size) + " bytes, too short for the 8-byte header size");
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];  // little-endian u64
  if (n > kMaxHeaderBytes) {
    return Corrupt(where + ": header size " + std::to_string(n) + " exceeds the format's limit of " +
                   std::to_string(kMaxHeaderBytes) + " bytes (not a safetensors file?)");
  }
  if (n > size - 8) {
    return Corrupt(where + ": header size " + std::to_string(n) + " runs past the end of the file (" +
                   std::to_string(size) + " bytes; truncated?)");
  }
  header_size_ = n;
  // The reference reader requires the header to open with '{' only from 0.4 on, but a JSON object is required
  // either way; saying so up front gives a clearer message than a type error.
  if (n == 0 || data[8] != '{') return Corrupt(where + ": the header is not a JSON object (it must start with '{')");
  Json header;
  PLM_RETURN_IF_ERROR(ParseHeaderJson(data + 8, n, name_, &header));
  if (!header.is_object()) return Corrupt(where + ": the header is not a JSON object");

  const uint8_t* buffer = data + 8 + n;
  const uint64_t buffer_size = size - 8 - n;
  tensors_.reserve(header.size());
  for (const auto& [key, val] : header.items()) {
    if (key == "__metadata__") {
      if (!val.is_object()) return Corrupt(where + ": __metadata__ is not an object of strings");
      for (const auto& [mk, mv] : val.items()) {
        if (!mv.is_string()) return Corrupt(where + ": __metadata__ value '" + mk + "' is not a string");
        metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    const std::string at = where + ", tensor '" + key + "'";
    if (!val.is_object()) return Corrupt(at + ": the entry is not an object");
    // Unknown extra fields are ignored, as the reference reader's serde derive does.
    auto dt = val.find("dtype");
    auto sh = val.find("shape");
    auto off = val.find("data_offsets");
    if (dt == val.end() || sh == val.end() || off == val.end()) {
      return Corrupt(at + ": the entry needs \"dtype\", \"shape\" and \"data_offsets\"");
    }
    if (!dt->is_string()) return Corrupt(at + ": dtype is not a string");
    const auto dtype = ParseStDType(dt->get<std::string>());
    if (!dtype) {
      return Corrupt(at + ": unknown dtype '" + dt->get<std::string>() + "' (known: " + KnownDTypes() + ")");
    }
    StTensor t;
    t.name = key;
    t.dtype = *dtype;
    if (!sh->is_array()) return Corrupt(at + ": shape is not an array");
    uint64_t elements = 1;
    bool overflow = false;
    for (const auto& d : *sh) {
      uint64_t v = 0;
      if (!GetCount(d, &v)) return Corrupt(at + ": shape holds '" + d.dump() + "', not a non-negative integer");
      t.shape.push_back(static_cast<int64_t>(v));
      if (v != 0 && elements > static_cast<uint64_t>(INT64_MAX) / v) overflow = true;
      elements *= v;
    }
    // Overflow is only real when no dimension is zero (a zero makes the product 0 whatever came before).
    const bool has_zero = std::find(t.shape.begin(), t.shape.end(), 0) != t.shape.end();
    if (overflow && !has_zero) return Corrupt(at + ": shape " + StShapeString(t.shape) + " overflows");
    if (has_zero) elements = 0;
    const uint64_t esize = StDTypeSize(t.dtype);
    if (elements > UINT64_MAX / esize) return Corrupt(at + ": shape " + StShapeString(t.shape) + " overflows");
    const uint64_t nbytes = elements * esize;
    if (!off->is_array() || off->size() != 2) return Corrupt(at + ": data_offsets is not a [begin, end] pair");
    uint64_t begin = 0, end = 0;
    if (!GetCount((*off)[0], &begin) || !GetCount((*off)[1], &end)) {
      return Corrupt(at + ": data_offsets " + off->dump() + " are not non-negative integers");
    }
    if (end < begin) return Corrupt(at + ": data_offsets " + off->dump() + " end before they begin");
    if (end > buffer_size) {
      return Corrupt(at + ": data_offsets " + off->dump() + " run past the end of the data (" +
                     std::to_string(buffer_size) + " bytes; truncated?)");
    }
    if (end - begin != nbytes) {
      return Corrupt(at + ": data_offsets " + off->dump() + " span " + std::to_string(end - begin) + " bytes but " +
                     std::string(StDTypeName(t.dtype)) + " " + StShapeString(t.shape) + " needs " +
                     std::to_string(nbytes));
    }
    t.begin = begin;
    t.bytes = std::span<const uint8_t>(buffer + begin, nbytes);
    tensors_.push_back(std::move(t));
  }
  // The reference reader's layout rule: sorted by offset, the tensors tile the buffer with no gap or overlap.
  std::stable_sort(tensors_.begin(), tensors_.end(), [](const StTensor& a, const StTensor& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.bytes.size() < b.bytes.size();
  });
  uint64_t expect = 0;
  for (const auto& t : tensors_) {
    if (t.begin != expect) {
      return Corrupt(where + ", tensor '" + t.name + "': data_offsets begin at " + std::to_string(t.begin) +
                     " but the data before it ends at " + std::to_string(expect) +
                     (t.begin < expect ? " (tensors overlap)" : " (a gap; the format requires none)"));
    }
    expect = t.begin + t.bytes.size();
  }
  if (expect != buffer_size) {
    return Corrupt(where + ": the tensors cover " + std::to_string(expect) + " bytes of data but the file holds " +
                   std::to_string(buffer_size) + " after the header");
  }
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  return Status::Ok();
}

const StTensor* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Status SafetensorsFile::CheckUsable(const StTensor& t) const {
  if (StDTypeToDType(t.dtype)) return Status::Ok();
  return Unsupported("safetensors file '" + name_ + "', tensor '" + t.name + "': unsupported dtype " +
                     std::string(StDTypeName(t.dtype)) + " (F32, F16 and BF16 are supported)");
}

Result<std::vector<float>> SafetensorsFile::ReadF32(const StTensor& t) const {
  PLM_RETURN_IF_ERROR(CheckUsable(t));
  const size_t n = static_cast<size_t>(t.n_elements());
  std::vector<float> out(n);
  const uint8_t* p = t.bytes.data();
  if (t.dtype == StDType::kF32) {
    if (n != 0) std::memcpy(out.data(), p, n * 4);  // the data may be unaligned in the mapping
    return out;
  }
  for (size_t i = 0; i < n; ++i) {
    const uint16_t h = static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8));
    out[i] = t.dtype == StDType::kF16 ? F16ToF32(h) : BF16ToF32(h);
  }
  return out;
}

}  // namespace pocketlm
