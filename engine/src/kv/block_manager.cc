#include "kv/block_manager.h"

#include <limits>
#include <stdexcept>
#include <string>

namespace engine {

BlockManager::BlockManager(int64_t num_blocks, int block_size) : block_size_(block_size) {
  if (block_size < 1) throw std::invalid_argument("BlockManager: block_size must be >= 1, got " + std::to_string(block_size));
  if (num_blocks < 1 || num_blocks > std::numeric_limits<int32_t>::max())
    throw std::invalid_argument("BlockManager: num_blocks must be in [1, 2^31), got " + std::to_string(num_blocks));
  in_use_.assign(static_cast<size_t>(num_blocks), 0);
  free_.reserve(static_cast<size_t>(num_blocks));
  // Pushed in reverse so that allocation hands out 0, 1, 2, ... on a fresh pool (easier to read in logs).
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

bool BlockManager::can_allocate(const BlockTable& table, int64_t num_tokens) const {
  int64_t need = blocks_for(num_tokens) - static_cast<int64_t>(table.size());
  return need <= num_free_blocks();
}

void BlockManager::allocate(BlockTable& table, int64_t num_tokens) {
  int64_t need = blocks_for(num_tokens) - static_cast<int64_t>(table.size());
  if (need <= 0) return;
  if (need > num_free_blocks())
    throw std::logic_error("BlockManager::allocate: " + std::to_string(need) + " blocks needed, " +
                           std::to_string(num_free_blocks()) + " free (call can_allocate first)");
  for (int64_t i = 0; i < need; ++i) {
    int32_t b = free_.back();
    free_.pop_back();
    in_use_[b] = 1;
    table.push_back(b);
  }
}

void BlockManager::free(BlockTable& table) {
  // Validate the whole table first: a bad id must leave the pool exactly as it was. in_use_ is cleared as we
  // go so a duplicate id inside this same table is caught too; on error the cleared marks are restored.
  for (size_t i = 0; i < table.size(); ++i) {
    int32_t b = table[i];
    std::string problem;
    if (b < 0 || b >= num_blocks())
      problem = "block id " + std::to_string(b) + " is outside the pool of " + std::to_string(num_blocks());
    else if (!in_use_[b])
      problem = "double free of block " + std::to_string(b);
    if (!problem.empty()) {
      for (size_t j = 0; j < i; ++j) in_use_[table[j]] = 1;
      throw std::logic_error("BlockManager::free: " + problem);
    }
    in_use_[b] = 0;
  }
  for (int32_t b : table) free_.push_back(b);
  table.clear();
}

}  // namespace engine
