// Private to engine/src/model: a set of mmapped .safetensors files and the tensors they hold.
// Format: 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [b, e]}},
// then the data; offsets are relative to the first byte after the header.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace engine::model_detail {

struct SafetensorsEntry {
  std::string file;            ///< for errors
  std::string dtype;           ///< as written ("BF16", "F32", ...)
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
};

class SafetensorsSet {
 public:
  /// Maps `path` and indexes its tensors. Throws ModelLoadError naming the file for a short file, bad header
  /// length, bad JSON, bad offsets, or a byte count that disagrees with dtype and shape.
  void add_file(const std::string& path);
  const SafetensorsEntry* find(const std::string& name) const;
  /// The tensor `name` as a Tensor of the stored dtype (F32/BF16/F16), its shape checked against `expected`.
  /// Throws ModelLoadError naming the file and tensor for a missing tensor, an unsupported dtype or a shape
  /// mismatch. `where` names the place searched, for the missing-tensor message.
  Tensor get(const std::string& name, const std::vector<int64_t>& expected, const std::string& where) const;
  bool has(const std::string& name) const { return find(name) != nullptr; }
  const std::vector<std::shared_ptr<const void>>& storage() const { return storage_; }

 private:
  std::map<std::string, SafetensorsEntry> entries_;
  std::vector<std::shared_ptr<const void>> storage_;
};

}  // namespace engine::model_detail
