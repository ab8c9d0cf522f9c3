#include "kv/kv_sizing.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kv/block_manager.h"

namespace engine {

namespace {

// The budget's origin as the user set it, for the error message.
std::string budget_source(const EngineConfig& c) {
  if (c.kv_memory_bytes > 0) return "kv_memory_bytes";
  if (c.backend == BackendKind::kCuda)
    return "gpu_memory_utilization " + std::to_string(c.gpu_memory_utilization) +
           " (what it leaves after weights and activations)";
  return "the default KV budget";
}

}  // namespace

int64_t kv_pool_blocks(const EngineConfig& c, int max_model_len, const KvBackendFacts& backend) {
  if (c.num_kv_blocks > 0) return c.num_kv_blocks;
  const int64_t budget = c.kv_memory_bytes > 0 ? c.kv_memory_bytes : backend.default_budget_bytes;
  const int64_t per_block = backend.bytes_per_token * c.block_size;
  const int64_t useful = static_cast<int64_t>(c.max_num_seqs) * blocks_for(max_model_len, c.block_size);
  const int64_t num_blocks = std::min(per_block > 0 ? budget / per_block : 0, useful);
  if (num_blocks < 1)
    throw std::invalid_argument("KV cache: " + budget_source(c) + " gives " + std::to_string(budget) +
                                " bytes, which hold no block of " + std::to_string(c.block_size) + " tokens (" +
                                std::to_string(per_block) + " bytes)");
  return num_blocks;
}

}  // namespace engine
