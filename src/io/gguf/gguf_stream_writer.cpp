#include "io/gguf/gguf_stream_writer.h"

#include <cstring>

namespace pocketlm {

namespace {

template <typename T>
Status Put(AtomicFileWriter& f, T v) {
  return f.Write(&v, sizeof(T));
}

Status PutString(AtomicFileWriter& f, const std::string& s) {
  PLM_RETURN_IF_ERROR(Put<uint64_t>(f, s.size()));
  return f.Write(s.data(), s.size());
}

// The value's payload, without its type tag (arrays carry their element type and count).
Status PutValue(AtomicFileWriter& f, const GgufOwnedValue& v) {
  switch (v.type) {
    case GgufType::kU8: return Put<uint8_t>(f, static_cast<uint8_t>(v.u));
    case GgufType::kI8: return Put<int8_t>(f, static_cast<int8_t>(v.i));
    case GgufType::kU16: return Put<uint16_t>(f, static_cast<uint16_t>(v.u));
    case GgufType::kI16: return Put<int16_t>(f, static_cast<int16_t>(v.i));
    case GgufType::kU32: return Put<uint32_t>(f, static_cast<uint32_t>(v.u));
    case GgufType::kI32: return Put<int32_t>(f, static_cast<int32_t>(v.i));
    case GgufType::kU64: return Put<uint64_t>(f, v.u);
    case GgufType::kI64: return Put<int64_t>(f, v.i);
    case GgufType::kF32: return Put<float>(f, static_cast<float>(v.f));
    case GgufType::kF64: return Put<double>(f, v.f);
    case GgufType::kBool: return Put<uint8_t>(f, v.u ? 1 : 0);
    case GgufType::kString: return PutString(f, v.str);
    case GgufType::kArray: {
      PLM_RETURN_IF_ERROR(Put<uint32_t>(f, static_cast<uint32_t>(v.elem_type)));
      PLM_RETURN_IF_ERROR(Put<uint64_t>(f, v.count));
      if (v.elem_type == GgufType::kString) {
        if (v.strings.size() != v.count) return InvalidArgument("string array count does not match its items");
        for (const auto& s : v.strings) PLM_RETURN_IF_ERROR(PutString(f, s));
      } else if (v.elem_type == GgufType::kArray) {
        if (v.items.size() != v.count) return InvalidArgument("nested array count does not match its items");
        for (const auto& it : v.items) PLM_RETURN_IF_ERROR(PutValue(f, it));
      } else {
        if (v.raw.size() != v.count * GgufScalarSize(v.elem_type)) {
          return InvalidArgument("numeric array payload does not match its count");
        }
        PLM_RETURN_IF_ERROR(f.Write(v.raw.data(), v.raw.size()));
      }
      return Status::Ok();
    }
  }
  return InvalidArgument("unknown GGUF value type " + std::to_string(static_cast<uint32_t>(v.type)));
}

uint64_t AlignUp(uint64_t x, uint64_t a) {
  return (x + a - 1) / a * a;
}

}  // namespace

Result<GgufStreamWriter> GgufStreamWriter::Create(const std::string& path, uint32_t alignment,
                                                  const std::vector<std::pair<std::string, GgufOwnedValue>>& kvs,
                                                  std::vector<GgufTensorDecl> tensors) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    return InvalidArgument("GGUF alignment " + std::to_string(alignment) + " is not a power of two");
  }
  GgufStreamWriter w;
  w.alignment_ = alignment;
  for (const auto& t : tensors) {
    if (t.ne.empty() || t.ne.size() > kGgufMaxDims) {
      return InvalidArgument("tensor '" + t.name + "' needs 1 to 4 dimensions");
    }
    uint64_t n = 1;
    for (int64_t d : t.ne) {
      if (d < 0) return InvalidArgument("tensor '" + t.name + "' has a negative dimension");
      n *= static_cast<uint64_t>(d);
    }
    const DTypeInfo& info = GetDTypeInfo(t.type);
    if (!RowBytes(t.type, static_cast<uint64_t>(t.ne[0]))) {
      return InvalidArgument("tensor '" + t.name + "': row length " + std::to_string(t.ne[0]) +
                             " is not a multiple of the " + std::string(info.name) + " block size " +
                             std::to_string(info.block_size));
    }
    w.sizes_.push_back(n / info.block_size * info.type_size);
  }
  w.tensors_ = std::move(tensors);

  PLM_ASSIGN_OR_RETURN(w.file_, AtomicFileWriter::Create(path));
  AtomicFileWriter& f = w.file_;
  PLM_RETURN_IF_ERROR(Put<uint32_t>(f, kGgufMagic));
  PLM_RETURN_IF_ERROR(Put<uint32_t>(f, 3));
  PLM_RETURN_IF_ERROR(Put<uint64_t>(f, w.tensors_.size()));
  PLM_RETURN_IF_ERROR(Put<uint64_t>(f, kvs.size()));
  for (const auto& [key, value] : kvs) {
    PLM_RETURN_IF_ERROR(PutString(f, key));
    PLM_RETURN_IF_ERROR(Put<uint32_t>(f, static_cast<uint32_t>(value.type)));
    PLM_RETURN_IF_ERROR(PutValue(f, value).WithContext("metadata key '" + key + "'"));
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < w.tensors_.size(); ++i) {
    const GgufTensorDecl& t = w.tensors_[i];
    PLM_RETURN_IF_ERROR(PutString(f, t.name));
    PLM_RETURN_IF_ERROR(Put<uint32_t>(f, static_cast<uint32_t>(t.ne.size())));
    for (int64_t d : t.ne) PLM_RETURN_IF_ERROR(Put<uint64_t>(f, static_cast<uint64_t>(d)));
    PLM_RETURN_IF_ERROR(Put<uint32_t>(f, static_cast<uint32_t>(t.type)));
    PLM_RETURN_IF_ERROR(Put<uint64_t>(f, offset));
    offset = AlignUp(offset + w.sizes_[i], alignment);
  }
  PLM_RETURN_IF_ERROR(f.WriteZeros(AlignUp(f.bytes_written(), alignment) - f.bytes_written()));
  // Empty tensors are complete before any byte arrives.
  while (w.current_ < w.sizes_.size() && w.sizes_[w.current_] == 0) ++w.current_;
  return w;
}

Status GgufStreamWriter::Append(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    if (current_ >= tensors_.size()) return InvalidArgument("more tensor bytes than the declared tensors hold");
    const uint64_t room = sizes_[current_] - written_;
    const size_t k = n < room ? n : static_cast<size_t>(room);
    PLM_RETURN_IF_ERROR(file_.Write(p, k));
    p += k;
    n -= k;
    written_ += k;
    if (written_ == sizes_[current_]) {
      PLM_RETURN_IF_ERROR(file_.WriteZeros(AlignUp(written_, alignment_) - written_));
      written_ = 0;
      ++current_;
      while (current_ < sizes_.size() && sizes_[current_] == 0) ++current_;
    }
  }
  return Status::Ok();
}

Status GgufStreamWriter::Commit() {
  if (current_ < tensors_.size()) {
    return InvalidArgument("tensor '" + tensors_[current_].name + "' got " + std::to_string(written_) + " of its " +
                           std::to_string(sizes_[current_]) + " bytes");
  }
  return file_.Commit();
}

}  // namespace pocketlm
