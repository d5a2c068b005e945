#include "io/safetensors/safetensors_writer.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"

namespace pocketlm {

namespace {

void PutU64(uint64_t v, uint8_t* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace

Status SafetensorsWriter::Check(const std::string& name, StDType dtype, const std::vector<int64_t>& shape,
                                size_t nbytes) const {
  if (name.empty() || name == "__metadata__") {
    return InvalidArgument("safetensors tensor name '" + name + "' is reserved or empty");
  }
  for (const auto& t : tensors_) {
    if (t.name == name) return InvalidArgument("safetensors tensor '" + name + "' added twice");
  }
  uint64_t elements = 1;
  for (int64_t d : shape) {
    if (d < 0) return InvalidArgument("safetensors tensor '" + name + "' has negative shape " + StShapeString(shape));
    if (d != 0 && elements > UINT64_MAX / StDTypeSize(dtype) / static_cast<uint64_t>(d)) {
      return InvalidArgument("safetensors tensor '" + name + "': shape " + StShapeString(shape) + " overflows");
    }
    elements *= static_cast<uint64_t>(d);
  }
  if (elements * StDTypeSize(dtype) != nbytes) {
    return InvalidArgument("safetensors tensor '" + name + "': " + std::to_string(nbytes) + " bytes given but " +
                           std::string(StDTypeName(dtype)) + " " + StShapeString(shape) + " needs " +
                           std::to_string(elements * StDTypeSize(dtype)));
  }
  return Status::Ok();
}

Status SafetensorsWriter::AddTensor(const std::string& name, StDType dtype, const std::vector<int64_t>& shape,
                                    const void* data, size_t nbytes) {
  PLM_RETURN_IF_ERROR(Check(name, dtype, shape, nbytes));
  Tensor t{name, dtype, shape, nbytes, {}, nullptr, {}};
  if (nbytes != 0) {
    const auto* p = static_cast<const uint8_t*>(data);
    t.data.assign(p, p + nbytes);
  }
  tensors_.push_back(std::move(t));
  return Status::Ok();
}

Status SafetensorsWriter::AddTensorView(const std::string& name, StDType dtype, const std::vector<int64_t>& shape,
                                        const void* data, size_t nbytes) {
  PLM_RETURN_IF_ERROR(Check(name, dtype, shape, nbytes));
  tensors_.push_back({name, dtype, shape, nbytes, {}, static_cast<const uint8_t*>(data), {}});
  return Status::Ok();
}

Status SafetensorsWriter::AddTensorDeferred(const std::string& name, StDType dtype, const std::vector<int64_t>& shape,
                                            size_t nbytes, FillFn fill) {
  PLM_RETURN_IF_ERROR(Check(name, dtype, shape, nbytes));
  if (!fill) return InvalidArgument("safetensors tensor '" + name + "': no fill function");
  tensors_.push_back({name, dtype, shape, nbytes, {}, nullptr, std::move(fill)});
  return Status::Ok();
}

Result<const uint8_t*> SafetensorsWriter::Bytes(const Tensor& t, std::vector<uint8_t>* buf) const {
  if (t.fill) {
    buf->resize(t.nbytes);
    PLM_RETURN_IF_ERROR(t.fill(buf->data()));
    return static_cast<const uint8_t*>(buf->data());
  }
  return t.view != nullptr ? t.view : t.data.data();
}

Result<std::string> SafetensorsWriter::Header(std::vector<const Tensor*>* order) const {
  order->clear();
  for (const auto& t : tensors_) order->push_back(&t);
  std::sort(order->begin(), order->end(), [](const Tensor* a, const Tensor* b) {
    const uint32_t sa = StDTypeSize(a->dtype), sb = StDTypeSize(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });
  nlohmann::json header = nlohmann::json::object();
  if (!metadata_.empty()) {
    nlohmann::json meta = nlohmann::json::object();
    for (const auto& [k, v] : metadata_) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const Tensor* t : *order) {
    header[t->name] = {{"dtype", std::string(StDTypeName(t->dtype))},
                       {"shape", t->shape},
                       {"data_offsets", {offset, offset + t->nbytes}}};
    offset += t->nbytes;
  }
  std::string text;
  try {
    text = header.dump();  // throws on a string that is not valid UTF-8
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("cannot write safetensors header: ") + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

Result<std::vector<uint8_t>> SafetensorsWriter::ToBytes() const {
  std::vector<const Tensor*> order;
  PLM_ASSIGN_OR_RETURN(std::string header, Header(&order));
  std::vector<uint8_t> out(8);
  PutU64(header.size(), out.data());
  out.insert(out.end(), header.begin(), header.end());
  std::vector<uint8_t> buf;
  for (const Tensor* t : order) {
    PLM_ASSIGN_OR_RETURN(const uint8_t* p, Bytes(*t, &buf));
    if (t->nbytes != 0) out.insert(out.end(), p, p + t->nbytes);
  }
  return out;
}

Status SafetensorsWriter::WriteFile(const std::string& path) const {
  std::vector<const Tensor*> order;
  PLM_ASSIGN_OR_RETURN(std::string header, Header(&order));
  PLM_ASSIGN_OR_RETURN(AtomicFileWriter f, AtomicFileWriter::Create(path));
  uint8_t size[8];
  PutU64(header.size(), size);
  PLM_RETURN_IF_ERROR(f.Write(size, sizeof(size)));
  PLM_RETURN_IF_ERROR(f.Write(header.data(), header.size()));
  std::vector<uint8_t> buf;  // one deferred tensor at a time
  for (const Tensor* t : order) {
    if (t->nbytes == 0) continue;
    PLM_ASSIGN_OR_RETURN(const uint8_t* p, Bytes(*t, &buf));
    PLM_RETURN_IF_ERROR(f.Write(p, t->nbytes));
  }
  return f.Commit();
}

}  // namespace pocketlm
