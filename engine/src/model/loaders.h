// Private to engine/src/model: the three loaders behind load_model(), and the small helpers they share
// (a read-only file mapping, error formatting, dtype conversion).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/engine.h"
#include "model/model.h"

namespace engine::model_detail {

/// A whole file mapped read-only. The mapping lives as long as the shared_ptr (ModelWeights::storage holds it).
struct MappedFile {
  std::string path;
  const uint8_t* data = nullptr;
  size_t size = 0;
  std::shared_ptr<const void> keepalive;  ///< unmaps on last release
};
/// Throws ModelLoadError "<path>: ..." for a missing, unreadable or empty file.
MappedFile map_file(const std::string& path);

/// Throws ModelLoadError("<file>: <what>").
[[noreturn]] void fail(const std::string& file, const std::string& what);

/// Element conversions (bit-exact for bf16/f16 -> f32; f32 -> bf16 rounds to nearest even).
float bf16_to_f32(uint16_t h);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

/// llama2.c checkpoint: 7 int32 header + f32 weights; wq/wk permuted to the half RoPE pairing.
ModelWeights load_llama2c(const std::string& path);
/// HF directory: config.json + model.safetensors (or sharded with model.safetensors.index.json).
ModelWeights load_hf_dir(const std::string& dir);
/// Reads config.json into a ModelConfig (every missing/ill-typed field named).
ModelConfig read_hf_config(const std::string& config_path);
/// The header of a llama2.c checkpoint as a ModelConfig (checked like load_llama2c, file size included).
ModelConfig read_llama2c_config(const MappedFile& f);
/// "dummy:<preset>" without the prefix: the preset's shapes, nothing allocated.
ModelConfig dummy_config(const std::string& preset);
/// "dummy:<preset>" without the prefix: seeded random bf16 weights with the preset's real shapes.
ModelWeights load_dummy(const std::string& preset, uint64_t seed);

}  // namespace engine::model_detail
