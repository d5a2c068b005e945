#include <cstdio>
#include <cstring>
#include <map>

#include "io/gguf/gguf_reader.h"
#include "options.h"

namespace pocketlm::cli {

namespace {

std::string ScalarString(GgufType t, const uint8_t* p) {
  auto get = [&](auto v) {
    std::memcpy(&v, p, sizeof(v));
    return v;
  };
  switch (t) {
    case GgufType::kU8: return std::to_string(get(uint8_t{}));
    case GgufType::kI8: return std::to_string(get(int8_t{}));
    case GgufType::kU16: return std::to_string(get(uint16_t{}));
    case GgufType::kI16: return std::to_string(get(int16_t{}));
    case GgufType::kU32: return std::to_string(get(uint32_t{}));
    case GgufType::kI32: return std::to_string(get(int32_t{}));
    case GgufType::kU64: return std::to_string(get(uint64_t{}));
    case GgufType::kI64: return std::to_string(get(int64_t{}));
    case GgufType::kF32: return std::to_string(get(float{}));
    case GgufType::kF64: return std::to_string(get(double{}));
    case GgufType::kBool: return *p ? "true" : "false";
    default: return "?";
  }
}

std::string Quote(std::string_view s, size_t max_len) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < max_len; ++i) {
    const char c = s[i];
    if (c == '\n') {
      out += "\\n";
    } else if (c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  if (s.size() > max_len) out += "...";
  return out + "\"";
}

std::string ValueString(const GgufValue& v, bool all) {
  const size_t max_items = all ? SIZE_MAX : 8;
  const size_t max_len = all ? SIZE_MAX : 120;
  switch (v.type) {
    case GgufType::kString: return Quote(v.str, max_len);
    case GgufType::kArray: {
      std::string s = "[" + std::string(GgufTypeName(v.elem_type)) + " x " + std::to_string(v.count) + "] ";
      for (uint64_t i = 0; i < v.count && i < max_items; ++i) {
        s += i ? ", " : "";
        if (v.elem_type == GgufType::kString) {
          s += Quote(v.strings[i], 40);
        } else if (v.elem_type == GgufType::kArray) {
          s += ValueString(v.items[i], all);
        } else {
          s += ScalarString(v.elem_type, v.raw + i * GgufScalarSize(v.elem_type));
        }
      }
      if (v.count > max_items) s += ", ...";
      return s;
    }
    case GgufType::kBool: return v.u ? "true" : "false";
    case GgufType::kF32:
    case GgufType::kF64: return std::to_string(v.f);
    default:
      return v.is_integer() ? (v.type == GgufType::kI8 || v.type == GgufType::kI16 || v.type == GgufType::kI32 ||
                                       v.type == GgufType::kI64
                                   ? std::to_string(v.i)
                                   : std::to_string(v.u))
                            : "?";
  }
}

std::string HumanBytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return buf;
}

}  // namespace

int InfoCommand(const InfoOptions& o) {
  const std::string& path = o.path;
  const bool all = o.all_metadata;
  auto f = GgufFile::Open(path);
  if (!f.ok()) return Fail(f.status());
  std::printf("file: %s\nGGUF version %u, %zu metadata entries, %zu tensors, alignment %lu, %s\n\nmetadata:\n",
              path.c_str(), f->version(), f->kvs().size(), f->tensors().size(),
              static_cast<unsigned long>(f->alignment()), HumanBytes(static_cast<double>(f->file_size())).c_str());
  for (const auto& kv : f->kvs()) {
    std::printf("  %-44s %-7s %s\n", std::string(kv.key).c_str(), std::string(GgufTypeName(kv.value.type)).c_str(),
                ValueString(kv.value, all).c_str());
  }
  if (!f->tensors().empty()) std::printf("\ntensors:\n");
  uint64_t total_bytes = 0, total_params = 0;
  std::map<std::string, uint64_t> by_type;
  for (const auto& t : f->tensors()) {
    std::printf("  %-40s %-8s %-22s %s\n", std::string(t.name).c_str(), std::string(DTypeName(t.type)).c_str(),
                ShapeString(t).c_str(), HumanBytes(static_cast<double>(t.nbytes)).c_str());
    total_bytes += t.nbytes;
    total_params += static_cast<uint64_t>(t.n_elements());
    by_type[std::string(DTypeName(t.type))] += 1;
  }
  if (!f->tensors().empty()) {
    std::printf("\n%.3f M parameters in %s (%.2f bits per weight); tensors by type:", total_params / 1e6,
                HumanBytes(static_cast<double>(total_bytes)).c_str(),
                total_params ? 8.0 * static_cast<double>(total_bytes) / static_cast<double>(total_params) : 0.0);
    for (const auto& [name, count] : by_type) std::printf(" %s %lu", name.c_str(), static_cast<unsigned long>(count));
    std::printf("\n");
  }
  return 0;
}

}  // namespace pocketlm::cli
