#include "io/gguf/gguf_reader.h"

#include <cstring>
#include <limits>

#include "base/utf8.h"

namespace pocketlm {

std::string_view GgufTypeName(GgufType t) {
  static constexpr std::string_view kNames[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                                "bool", "string", "array", "u64", "i64", "f64"};
  auto i = static_cast<uint32_t>(t);
  return i < 13 ? kNames[i] : std::string_view("unknown");
}

uint32_t GgufScalarSize(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool: return 1;
    case GgufType::kU16:
    case GgufType::kI16: return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32: return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64: return 8;
    default: return 0;
  }
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kU16:
    case GgufType::kI16:
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kU64:
    case GgufType::kI64: return true;
    default: return false;
  }
}

namespace {

// Arrays nested deeper than this are refused: real files use none, and the limit bounds recursion on hostile
// input.
constexpr int kMaxArrayDepth = 4;

// Bounds-checked little-endian cursor over the file bytes.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  const uint8_t* here() const { return data_ + pos_; }

  template <typename T>
  bool Read(T* out) {
    if (remaining() < sizeof(T)) return false;
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool Skip(uint64_t n) {
    if (n > remaining()) return false;
    pos_ += n;
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

class Parser {
 public:
  Parser(const std::string& name, const uint8_t* data, size_t size) : name_(name), c_(data, size) {}

  Status Error(const std::string& what) const {
    return Corrupt("GGUF file '" + name_ + "': " + what + " (at byte " + std::to_string(c_.pos()) + ")");
  }

  Status ReadString(std::string_view* out, const std::string& field) {
    uint64_t n = 0;
    if (!c_.Read(&n)) return Error("truncated length of " + field);
    if (n > c_.remaining()) {
      return Error("length " + std::to_string(n) + " of " + field + " runs past the end of the file");
    }
    *out = std::string_view(reinterpret_cast<const char*>(c_.here()), n);
    c_.Skip(n);
    if (!IsValidUtf8(*out)) return Error(field + " is not valid UTF-8");
    return Status::Ok();
  }

  Status ReadValue(GgufType type, GgufValue* v, const std::string& field, int depth) {
    v->type = type;
    switch (type) {
      case GgufType::kU8: return ReadUnsigned<uint8_t>(v, field);
      case GgufType::kU16: return ReadUnsigned<uint16_t>(v, field);
      case GgufType::kU32: return ReadUnsigned<uint32_t>(v, field);
      case GgufType::kU64: return ReadUnsigned<uint64_t>(v, field);
      case GgufType::kI8: return ReadSigned<int8_t>(v, field);
      case GgufType::kI16: return ReadSigned<int16_t>(v, field);
      case GgufType::kI32: return ReadSigned<int32_t>(v, field);
      case GgufType::kI64: return ReadSigned<int64_t>(v, field);
      case GgufType::kBool: {
        uint8_t b = 0;
        if (!c_.Read(&b)) return Error("truncated value of " + field);
        if (b > 1) return Error("bool " + field + " has value " + std::to_string(b) + " (must be 0 or 1)");
        v->u = b;
        return Status::Ok();
      }
      case GgufType::kF32: {
        float f = 0;
        if (!c_.Read(&f)) return Error("truncated value of " + field);
        v->f = f;
        return Status::Ok();
      }
      case GgufType::kF64: {
        double f = 0;
        if (!c_.Read(&f)) return Error("truncated value of " + field);
        v->f = f;
        return Status::Ok();
      }
      case GgufType::kString: return ReadString(&v->str, field);
      case GgufType::kArray: return ReadArray(v, field, depth);
    }
    return Error(field + " has unknown value type " + std::to_string(static_cast<uint32_t>(type)));
  }

  Status ReadArray(GgufValue* v, const std::string& field, int depth) {
    if (depth >= kMaxArrayDepth) return Error(field + " nests arrays deeper than " + std::to_string(kMaxArrayDepth));
    uint32_t et = 0;
    if (!c_.Read(&et)) return Error("truncated element type of array " + field);
    if (et > static_cast<uint32_t>(GgufType::kF64)) {
      return Error("array " + field + " has unknown element type " + std::to_string(et));
    }
    v->elem_type = static_cast<GgufType>(et);
    if (!c_.Read(&v->count)) return Error("truncated length of array " + field);
    const uint32_t es = GgufScalarSize(v->elem_type);
    if (es != 0) {
      if (v->count > c_.remaining() / es) {
        return Error("array " + field + " of " + std::to_string(v->count) + " " +
                     std::string(GgufTypeName(v->elem_type)) + " runs past the end of the file");
      }
      v->raw = c_.here();
      if (v->elem_type == GgufType::kBool) {
        for (uint64_t k = 0; k < v->count; ++k) {
          if (v->raw[k] > 1) return Error("array " + field + " holds a bool that is neither 0 nor 1");
        }
      }
      c_.Skip(v->count * es);
      return Status::Ok();
    }
    // Strings and nested arrays take at least 8 bytes each: bound the count before reserving memory.
    if (v->count > c_.remaining() / 8) {
      return Error("array " + field + " claims " + std::to_string(v->count) + " elements, more than the file holds");
    }
    if (v->elem_type == GgufType::kString) {
      v->strings.resize(v->count);
      for (uint64_t k = 0; k < v->count; ++k) {
        PLM_RETURN_IF_ERROR(ReadString(&v->strings[k], field + "[" + std::to_string(k) + "]"));
      }
    } else {
      v->items.resize(v->count);
      for (uint64_t k = 0; k < v->count; ++k) {
        PLM_RETURN_IF_ERROR(
            ReadValue(GgufType::kArray, &v->items[k], field + "[" + std::to_string(k) + "]", depth + 1));
      }
    }
    return Status::Ok();
  }

  Cursor& cursor() { return c_; }

 private:
  template <typename T>
  Status ReadUnsigned(GgufValue* v, const std::string& field) {
    T x{};
    if (!c_.Read(&x)) return Error("truncated value of " + field);
    v->u = x;
    return Status::Ok();
  }
  template <typename T>
  Status ReadSigned(GgufValue* v, const std::string& field) {
    T x{};
    if (!c_.Read(&x)) return Error("truncated value of " + field);
    v->i = x;
    return Status::Ok();
  }

  const std::string& name_;
  Cursor c_;
};

}  // namespace

Result<GgufFile> GgufFile::Open(const std::string& path) {
  PLM_ASSIGN_OR_RETURN(MappedFile m, MappedFile::Open(path));
  GgufFile f;
  f.name_ = path;
  f.mapping_ = std::make_unique<MappedFile>(std::move(m));
  PLM_RETURN_IF_ERROR(f.Parse(f.mapping_->data(), f.mapping_->size()));
  return f;
}

Result<GgufFile> GgufFile::FromBytes(std::vector<uint8_t> bytes, const std::string& name) {
  GgufFile f;
  f.name_ = name;
  f.bytes_ = std::make_unique<std::vector<uint8_t>>(std::move(bytes));
  PLM_RETURN_IF_ERROR(f.Parse(f.bytes_->data(), f.bytes_->size()));
  return f;
}

Status GgufFile::Parse(const uint8_t* data, size_t size) {
  size_ = size;
  Parser p(name_, data, size);
  Cursor& c = p.cursor();
  uint32_t magic = 0;
  if (!c.Read(&magic)) return p.Error("file is too short to be GGUF");
  if (magic != kGgufMagic) return p.Error("wrong magic (not a GGUF file)");
  if (!c.Read(&version_)) return p.Error("truncated header");
  if (version_ == 1) return Unsupported("GGUF file '" + name_ + "' is version 1; re-convert it with a current tool");
  if (version_ != 2 && version_ != 3) {
    return Unsupported("GGUF file '" + name_ + "' has version " + std::to_string(version_) + " (supported: 2, 3)");
  }
  uint64_t n_tensors = 0, n_kv = 0;
  if (!c.Read(&n_tensors) || !c.Read(&n_kv)) return p.Error("truncated header");
  // Each key/value pair needs at least 8 (key length) + 4 (type) + 1 bytes, each tensor info 8 + 4 + 8 + 4 + 8.
  if (n_kv > c.remaining() / 13)
    return p.Error("header claims " + std::to_string(n_kv) + " metadata pairs, more than the file holds");
  if (n_tensors > c.remaining() / 32)
    return p.Error("header claims " + std::to_string(n_tensors) + " tensors, more than the file holds");

  kvs_.resize(n_kv);
  kv_index_.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    GgufKv& kv = kvs_[k];
    PLM_RETURN_IF_ERROR(p.ReadString(&kv.key, "metadata key #" + std::to_string(k)));
    uint32_t t = 0;
    if (!c.Read(&t)) return p.Error("truncated type of metadata '" + std::string(kv.key) + "'");
    if (t > static_cast<uint32_t>(GgufType::kF64)) {
      return p.Error("metadata '" + std::string(kv.key) + "' has unknown value type " + std::to_string(t));
    }
    PLM_RETURN_IF_ERROR(p.ReadValue(static_cast<GgufType>(t), &kv.value, "metadata '" + std::string(kv.key) + "'", 0));
    if (!kv_index_.emplace(kv.key, k).second) return p.Error("duplicate metadata key '" + std::string(kv.key) + "'");
  }

  if (const GgufValue* a = Find("general.alignment")) {
    if (a->type != GgufType::kU32)
      return p.Error("general.alignment must be u32, is " + std::string(GgufTypeName(a->type)));
    if (a->u == 0 || (a->u & (a->u - 1)) != 0) {
      return p.Error("general.alignment " + std::to_string(a->u) + " is not a power of two");
    }
    alignment_ = a->u;
  }

  tensors_.resize(n_tensors);
  tensor_index_.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo& t = tensors_[k];
    PLM_RETURN_IF_ERROR(p.ReadString(&t.name, "name of tensor #" + std::to_string(k)));
    const std::string tn = "tensor '" + std::string(t.name) + "'";
    uint32_t nd = 0;
    if (!c.Read(&nd)) return p.Error("truncated dimension count of " + tn);
    if (nd == 0 || nd > kGgufMaxDims)
      return p.Error(tn + " has " + std::to_string(nd) + " dimensions (1 to 4 allowed)");
    t.n_dims = static_cast<int>(nd);
    uint64_t total = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      uint64_t ne = 0;
      if (!c.Read(&ne)) return p.Error("truncated shape of " + tn);
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return p.Error(tn + " has a negative dimension");
      if (ne != 0 && total > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne) {
        return p.Error("shape of " + tn + " overflows 64 bits");
      }
      total *= ne;
      t.ne[d] = static_cast<int64_t>(ne);
    }
    uint32_t raw_type = 0;
    if (!c.Read(&raw_type)) return p.Error("truncated type of " + tn);
    auto info = LookupDType(raw_type);
    if (!info) return p.Error(tn + " has unknown storage type " + std::to_string(raw_type));
    t.type = info->type;
    if (t.ne[0] % info->block_size != 0) {
      return p.Error(tn + " row length " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                     std::string(info->name) + " block size " + std::to_string(info->block_size));
    }
    t.nbytes = total / info->block_size * info->type_size;  // total < 2^63 / block: no overflow for type_size <= 292
    if (total / info->block_size > std::numeric_limits<uint64_t>::max() / info->type_size) {
      return p.Error("byte size of " + tn + " overflows 64 bits");
    }
    if (!c.Read(&t.offset)) return p.Error("truncated data offset of " + tn);
    if (t.offset % alignment_ != 0) {
      return p.Error(tn + " data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                     std::to_string(alignment_));
    }
    if (!tensor_index_.emplace(t.name, k).second) return p.Error("duplicate tensor name '" + std::string(t.name) + "'");
  }

  uint64_t pos = c.pos();
  data_offset_ = (pos + alignment_ - 1) / alignment_ * alignment_;
  if (n_tensors > 0 && data_offset_ > size) return p.Error("tensor data section starts past the end of the file");
  const uint64_t data_size = data_offset_ <= size ? size - data_offset_ : 0;
  for (auto& t : tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      return Corrupt("GGUF file '" + name_ + "': data of tensor '" + std::string(t.name) + "' (offset " +
                     std::to_string(t.offset) + ", " + std::to_string(t.nbytes) +
                     " bytes) runs past the end of the file" + " (file truncated?)");
    }
    t.data = data + data_offset_ + t.offset;
  }
  return Status::Ok();
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
Status TypeError(const std::string& file, std::string_view key, std::string_view want, GgufType got) {
  return Corrupt("GGUF file '" + file + "': metadata '" + std::string(key) + "' should be " + std::string(want) +
                 " but is " + std::string(GgufTypeName(got)));
}
}  // namespace

Result<int64_t> GgufFile::GetInt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound("GGUF file '" + name_ + "' lacks metadata '" + std::string(key) + "'");
  if (!v->is_integer()) return TypeError(name_, key, "an integer", v->type);
  if (v->type == GgufType::kU64 && v->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Corrupt("GGUF file '" + name_ + "': metadata '" + std::string(key) + "' is too large");
  }
  switch (v->type) {
    case GgufType::kU8:
    case GgufType::kU16:
    case GgufType::kU32:
    case GgufType::kU64: return static_cast<int64_t>(v->u);
    default: return v->i;
  }
}

Result<double> GgufFile::GetFloat(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound("GGUF file '" + name_ + "' lacks metadata '" + std::string(key) + "'");
  if (v->is_float()) return v->f;
  if (v->is_integer()) {
    PLM_ASSIGN_OR_RETURN(int64_t i, GetInt(key));
    return static_cast<double>(i);
  }
  return TypeError(name_, key, "a number", v->type);
}

Result<bool> GgufFile::GetBool(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound("GGUF file '" + name_ + "' lacks metadata '" + std::string(key) + "'");
  if (v->type != GgufType::kBool) return TypeError(name_, key, "bool", v->type);
  return v->u != 0;
}

Result<std::string_view> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound("GGUF file '" + name_ + "' lacks metadata '" + std::string(key) + "'");
  if (v->type != GgufType::kString) return TypeError(name_, key, "string", v->type);
  return v->str;
}

Result<const GgufValue*> GgufFile::GetArray(std::string_view key, GgufType elem_type) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound("GGUF file '" + name_ + "' lacks metadata '" + std::string(key) + "'");
  if (v->type != GgufType::kArray) return TypeError(name_, key, "array", v->type);
  if (v->elem_type != elem_type) {
    return TypeError(name_, key, "array of " + std::string(GgufTypeName(elem_type)),
                     v->elem_type);  // names the element type it has
  }
  return v;
}

Result<int64_t> GgufFile::GetInt(std::string_view key, int64_t fallback) const {
  return Find(key) == nullptr ? Result<int64_t>(fallback) : GetInt(key);
}
Result<double> GgufFile::GetFloat(std::string_view key, double fallback) const {
  return Find(key) == nullptr ? Result<double>(fallback) : GetFloat(key);
}
Result<bool> GgufFile::GetBool(std::string_view key, bool fallback) const {
  return Find(key) == nullptr ? Result<bool>(fallback) : GetBool(key);
}

std::string ShapeString(const GgufTensorInfo& t) {
  std::string s = "[";
  for (int d = 0; d < t.n_dims; ++d) {
    if (d) s += ", ";
    s += std::to_string(t.ne[d]);
  }
  return s + "]";
}

TensorView ViewOf(const GgufTensorInfo& t) {
  TensorView v;
  v.name = t.name;
  v.type = t.type;
  for (int d = 0; d < 4; ++d) v.ne[d] = t.ne[d];
  v.data = t.data;
  v.nbytes = t.nbytes;
  return v;
}

Result<uint8_t*> GgufFile::MutableBytes(const uint8_t* p, size_t n) {
  if (mapping_ != nullptr) return mapping_->MakeWritable(p, n);
  if (bytes_ == nullptr || p < bytes_->data() || n > bytes_->size() ||
      static_cast<size_t>(p - bytes_->data()) > bytes_->size() - n) {
    return InvalidArgument("MutableBytes: range outside '" + name_ + "'");
  }
  return bytes_->data() + (p - bytes_->data());
}

}  // namespace pocketlm
