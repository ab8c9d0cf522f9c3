// Parses .safetensors headers (with nlohmann::json) over an mmapped file; no copy of the data is made.
#include <cstring>
#include <nlohmann/json.hpp>

#include "model/loaders.h"
#include "model/safetensors.h"

namespace engine::model_detail {
namespace {

using json = nlohmann::json;

/// Bytes per element of the dtypes safetensors defines; 0 for a name we do not know.
size_t safetensors_dtype_size(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

void SafetensorsSet::add_file(const std::string& path) {
  MappedFile f = map_file(path);
  if (f.size < 8) fail(path, "file too short for a safetensors header: " + std::to_string(f.size) + " bytes");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | f.data[i];  // little-endian u64
  if (n > f.size - 8 || n > (uint64_t(1) << 30))
    fail(path, "corrupt safetensors header: header length " + std::to_string(n) + " but the file has " +
                   std::to_string(f.size) + " bytes");
  json h;
  try {
    h = json::parse(f.data + 8, f.data + 8 + n);
  } catch (const json::exception& e) {
    fail(path, std::string("corrupt safetensors header (not valid JSON): ") + e.what());
  }
  if (!h.is_object()) fail(path, "corrupt safetensors header: not a JSON object");
  const uint8_t* base = f.data + 8 + n;
  const size_t data_size = f.size - 8 - n;
  for (const auto& [name, t] : h.items()) {
    if (name == "__metadata__") continue;
    auto bad = [&](const std::string& what) { fail(path, "tensor \"" + name + "\": " + what); };
    if (!t.is_object() || !t.contains("dtype") || !t.contains("shape") || !t.contains("data_offsets"))
      bad("header entry needs dtype, shape and data_offsets");
    if (!t["dtype"].is_string()) bad("dtype is not a string");
    SafetensorsEntry e;
    e.file = path;
    e.dtype = t["dtype"].get<std::string>();
    if (!t["shape"].is_array()) bad("shape is not an array");
    int64_t numel = 1;
    for (const auto& s : t["shape"]) {
      if (!s.is_number_integer() || s.get<int64_t>() < 0 || s.get<int64_t>() > (int64_t(1) << 40))
        bad("bad shape " + t["shape"].dump());
      const int64_t dim = s.get<int64_t>();
      if (dim > 0 && numel > (int64_t(1) << 40) / dim) bad("bad shape " + t["shape"].dump());  // before it overflows
      e.shape.push_back(dim);
      numel *= dim;
    }
    const json& off = t["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      bad("data_offsets must be two non-negative integers, got " + off.dump());
    const uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    if (b > en || en > data_size)
      bad("data_offsets [" + std::to_string(b) + ", " + std::to_string(en) + "] outside the " +
          std::to_string(data_size) + " data bytes (file truncated?)");
    const size_t es = safetensors_dtype_size(e.dtype);
    if (es != 0 && en - b != uint64_t(numel) * es)
      bad("holds " + std::to_string(en - b) + " bytes but dtype " + e.dtype + " and shape " + shape_str(e.shape) +
          " need " + std::to_string(uint64_t(numel) * es));
    e.data = base + b;
    e.nbytes = en - b;
    entries_[name] = std::move(e);
  }
  storage_.push_back(f.keepalive);
}

const SafetensorsEntry* SafetensorsSet::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

Tensor SafetensorsSet::get(const std::string& name, const std::vector<int64_t>& expected,
                           const std::string& where) const {
  const SafetensorsEntry* e = find(name);
  if (!e) fail(where, "missing tensor \"" + name + "\"");
  Tensor t;
  if (e->dtype == "F32") t.dtype = DType::kF32;
  else if (e->dtype == "BF16") t.dtype = DType::kBF16;
  else if (e->dtype == "F16") t.dtype = DType::kF16;
  else fail(e->file, "tensor \"" + name + "\" has unsupported dtype \"" + e->dtype + "\" (supported: F32, BF16, F16)");
  if (e->shape != expected)
    fail(e->file, "tensor \"" + name + "\" has shape " + shape_str(e->shape) + ", expected " + shape_str(expected) +
                      " from config.json");
  t.shape = e->shape;
  t.data = e->data;
  return t;
}

}  // namespace engine::model_detail
