#include "io/gguf/gguf_writer.h"

#include <cstring>

#include "base/atomic_file.h"

namespace pocketlm {

GgufOwnedValue GgufOwnedValue::FromView(const GgufValue& v) {
  GgufOwnedValue o;
  o.type = v.type;
  o.u = v.u;
  o.i = v.i;
  o.f = v.f;
  o.str = std::string(v.str);
  o.elem_type = v.elem_type;
  o.count = v.count;
  if (v.type == GgufType::kArray) {
    if (v.raw != nullptr) o.raw.assign(v.raw, v.raw + v.count * GgufScalarSize(v.elem_type));
    for (auto s : v.strings) o.strings.emplace_back(s);
    for (const auto& it : v.items) o.items.push_back(FromView(it));
  }
  return o;
}

void GgufWriter::Set(const std::string& key, GgufOwnedValue v) {
  for (auto& kv : kvs_) {
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  }
  kvs_.emplace_back(key, std::move(v));
}

void GgufWriter::SetU32(const std::string& key, uint32_t v) {
  GgufOwnedValue o;
  o.type = GgufType::kU32;
  o.u = v;
  Set(key, std::move(o));
}
void GgufWriter::SetI32(const std::string& key, int32_t v) {
  GgufOwnedValue o;
  o.type = GgufType::kI32;
  o.i = v;
  Set(key, std::move(o));
}
void GgufWriter::SetU64(const std::string& key, uint64_t v) {
  GgufOwnedValue o;
  o.type = GgufType::kU64;
  o.u = v;
  Set(key, std::move(o));
}
void GgufWriter::SetF32(const std::string& key, float v) {
  GgufOwnedValue o;
  o.type = GgufType::kF32;
  o.f = v;
  Set(key, std::move(o));
}
void GgufWriter::SetBool(const std::string& key, bool v) {
  GgufOwnedValue o;
  o.type = GgufType::kBool;
  o.u = v ? 1 : 0;
  Set(key, std::move(o));
}
void GgufWriter::SetString(const std::string& key, std::string v) {
  GgufOwnedValue o;
  o.type = GgufType::kString;
  o.str = std::move(v);
  Set(key, std::move(o));
}
void GgufWriter::SetStringArray(const std::string& key, std::vector<std::string> v) {
  GgufOwnedValue o;
  o.type = GgufType::kArray;
  o.elem_type = GgufType::kString;
  o.count = v.size();
  o.strings = std::move(v);
  Set(key, std::move(o));
}
void GgufWriter::SetF32Array(const std::string& key, const std::vector<float>& v) {
  GgufOwnedValue o;
  o.type = GgufType::kArray;
  o.elem_type = GgufType::kF32;
  o.count = v.size();
  o.raw.resize(v.size() * 4);
  if (!v.empty()) std::memcpy(o.raw.data(), v.data(), o.raw.size());
  Set(key, std::move(o));
}
void GgufWriter::SetI32Array(const std::string& key, const std::vector<int32_t>& v) {
  GgufOwnedValue o;
  o.type = GgufType::kArray;
  o.elem_type = GgufType::kI32;
  o.count = v.size();
  o.raw.resize(v.size() * 4);
  if (!v.empty()) std::memcpy(o.raw.data(), v.data(), o.raw.size());
  Set(key, std::move(o));
}

Status GgufWriter::AddTensor(const std::string& name, DType type, const std::vector<int64_t>& ne, const void* data,
                             size_t nbytes) {
  if (ne.empty() || ne.size() > kGgufMaxDims) return InvalidArgument("tensor '" + name + "' needs 1 to 4 dimensions");
  uint64_t n = 1;
  for (int64_t d : ne) {
    if (d < 0) return InvalidArgument("tensor '" + name + "' has a negative dimension");
    n *= static_cast<uint64_t>(d);
  }
  auto row = RowBytes(type, static_cast<uint64_t>(ne[0]));
  if (!row) return InvalidArgument("tensor '" + name + "' row length is not a multiple of the block size");
  const uint64_t want = n / GetDTypeInfo(type).block_size * GetDTypeInfo(type).type_size;
  if (want != nbytes) {
    return InvalidArgument("tensor '" + name + "' has " + std::to_string(nbytes) + " bytes, its shape needs " +
                           std::to_string(want));
  }
  for (const auto& t : tensors_) {
    if (t.name == name) return InvalidArgument("tensor '" + name + "' added twice");
  }
  const auto* p = static_cast<const uint8_t*>(data);
  tensors_.push_back({name, type, ne, std::vector<uint8_t>(p, p + nbytes)});
  return Status::Ok();
}

namespace {

struct VectorSink {
  std::vector<uint8_t>* out;
  Status Write(const void* p, size_t n) {
    const size_t at = out->size();
    out->resize(at + n);
    if (n != 0) std::memcpy(out->data() + at, p, n);
    return Status::Ok();
  }
  Status WriteZeros(size_t n) {
    out->insert(out->end(), n, 0);
    return Status::Ok();
  }
  uint64_t bytes_written() const { return out->size(); }
};

template <typename Sink, typename T>
Status Put(Sink& s, T v) {
  return s.Write(&v, sizeof(T));
}

template <typename Sink>
Status PutString(Sink& s, const std::string& str) {
  PLM_RETURN_IF_ERROR(Put<Sink, uint64_t>(s, str.size()));
  return s.Write(str.data(), str.size());
}

template <typename Sink>
Status PutValue(Sink& s, const GgufOwnedValue& v) {
  switch (v.type) {
    case GgufType::kU8: return Put<Sink, uint8_t>(s, static_cast<uint8_t>(v.u));
    case GgufType::kI8: return Put<Sink, int8_t>(s, static_cast<int8_t>(v.i));
    case GgufType::kU16: return Put<Sink, uint16_t>(s, static_cast<uint16_t>(v.u));
    case GgufType::kI16: return Put<Sink, int16_t>(s, static_cast<int16_t>(v.i));
    case GgufType::kU32: return Put<Sink, uint32_t>(s, static_cast<uint32_t>(v.u));
    case GgufType::kI32: return Put<Sink, int32_t>(s, static_cast<int32_t>(v.i));
    case GgufType::kU64: return Put<Sink, uint64_t>(s, v.u);
    case GgufType::kI64: return Put<Sink, int64_t>(s, v.i);
    case GgufType::kF32: return Put<Sink, float>(s, static_cast<float>(v.f));
    case GgufType::kF64: return Put<Sink, double>(s, v.f);
    case GgufType::kBool: return Put<Sink, uint8_t>(s, v.u ? 1 : 0);
    case GgufType::kString: return PutString(s, v.str);
    case GgufType::kArray: {
      PLM_RETURN_IF_ERROR(Put<Sink, uint32_t>(s, static_cast<uint32_t>(v.elem_type)));
      PLM_RETURN_IF_ERROR(Put<Sink, uint64_t>(s, v.count));
      if (v.elem_type == GgufType::kString) {
        for (const auto& str : v.strings) PLM_RETURN_IF_ERROR(PutString(s, str));
      } else if (v.elem_type == GgufType::kArray) {
        for (const auto& it : v.items) PLM_RETURN_IF_ERROR(PutValue(s, it));
      } else {
        PLM_RETURN_IF_ERROR(s.Write(v.raw.data(), v.raw.size()));
      }
      return Status::Ok();
    }
  }
  return InvalidArgument("unknown GGUF value type");
}

uint64_t AlignUp(uint64_t x, uint64_t a) {
  return (x + a - 1) / a * a;
}

}  // namespace

namespace {
template <typename Sink>
Status WriteAll(Sink& s, uint32_t alignment, const std::vector<std::pair<std::string, GgufOwnedValue>>& kvs,
                const auto& tensors) {
  PLM_RETURN_IF_ERROR(Put<Sink, uint32_t>(s, kGgufMagic));
  PLM_RETURN_IF_ERROR(Put<Sink, uint32_t>(s, 3));
  PLM_RETURN_IF_ERROR(Put<Sink, uint64_t>(s, tensors.size()));
  // general.alignment is written only when it differs from the default, as llama.cpp does.
  bool write_alignment = alignment != kGgufDefaultAlignment;
  bool has_alignment_key = false;
  for (const auto& kv : kvs) has_alignment_key |= kv.first == "general.alignment";
  PLM_RETURN_IF_ERROR(Put<Sink, uint64_t>(s, kvs.size() + (write_alignment && !has_alignment_key ? 1 : 0)));
  for (const auto& kv : kvs) {
    PLM_RETURN_IF_ERROR(PutString(s, kv.first));
    GgufOwnedValue v = kv.second;
    if (kv.first == "general.alignment") {
      v.type = GgufType::kU32;
      v.u = alignment;
    }
    PLM_RETURN_IF_ERROR(Put<Sink, uint32_t>(s, static_cast<uint32_t>(v.type)));
    PLM_RETURN_IF_ERROR(PutValue(s, v));
  }
  if (write_alignment && !has_alignment_key) {
    PLM_RETURN_IF_ERROR(PutString(s, std::string("general.alignment")));
    PLM_RETURN_IF_ERROR(Put<Sink, uint32_t>(s, static_cast<uint32_t>(GgufType::kU32)));
    PLM_RETURN_IF_ERROR(Put<Sink, uint32_t>(s, alignment));
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    PLM_RETURN_IF_ERROR(PutString(s, t.name));
    PLM_RETURN_IF_ERROR(Put<Sink, uint32_t>(s, static_cast<uint32_t>(t.ne.size())));
    for (int64_t d : t.ne) PLM_RETURN_IF_ERROR(Put<Sink, uint64_t>(s, static_cast<uint64_t>(d)));
    PLM_RETURN_IF_ERROR(Put<Sink, uint32_t>(s, static_cast<uint32_t>(t.type)));
    PLM_RETURN_IF_ERROR(Put<Sink, uint64_t>(s, offset));
    offset = AlignUp(offset + t.data.size(), alignment);
  }
  PLM_RETURN_IF_ERROR(s.WriteZeros(AlignUp(s.bytes_written(), alignment) - s.bytes_written()));
  for (const auto& t : tensors) {
    PLM_RETURN_IF_ERROR(s.Write(t.data.data(), t.data.size()));
    PLM_RETURN_IF_ERROR(s.WriteZeros(AlignUp(t.data.size(), alignment) - t.data.size()));
  }
  return Status::Ok();
}
}  // namespace

Status GgufWriter::WriteFile(const std::string& path) const {
  PLM_ASSIGN_OR_RETURN(AtomicFileWriter w, AtomicFileWriter::Create(path));
  PLM_RETURN_IF_ERROR(WriteAll(w, alignment_, kvs_, tensors_));
  return w.Commit();
}

std::vector<uint8_t> GgufWriter::ToBytes() const {
  std::vector<uint8_t> out;
  VectorSink sink{&out};
  (void)WriteAll(sink, alignment_, kvs_, tensors_);  // a vector sink cannot fail
  return out;
}

}  // namespace pocketlm
