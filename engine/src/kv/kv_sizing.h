// How many blocks the KV pool gets: an explicit count (EngineConfig::num_kv_blocks), else the memory budget
// (EngineConfig::kv_memory_bytes, or the backend's default) divided into blocks, capped at what
// max_num_seqs sequences of max_model_len tokens could ever hold (memory past that would never be touched).
#pragma once

#include <cstdint>

#include "engine/engine.h"

namespace engine {

/// What the backend reports for sizing: its KV bytes per token (all layers, K and V) and the budget it
/// suggests when the user gave none (cpu: a fixed size; cuda: what gpu_memory_utilization leaves).
struct KvBackendFacts {
  int64_t bytes_per_token = 0;
  int64_t default_budget_bytes = 0;
};

/// Blocks for the pool of `config` (max_model_len: the effective one, already resolved from the model).
/// Throws std::invalid_argument, naming the EngineConfig field the budget came from, when the budget holds
/// no block at all.
int64_t kv_pool_blocks(const EngineConfig& config, int max_model_len, const KvBackendFacts& backend);

}  // namespace engine
