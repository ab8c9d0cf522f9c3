// Paged KV cache bookkeeping. The backend holds the memory (num_blocks blocks of block_size tokens, all
// layers); the BlockManager only hands out block ids. Each sequence owns a block table: block i holds the
// K/V of its tokens [i * block_size, (i + 1) * block_size). Not thread-safe: the engine thread owns it.
#pragma once

#include <cstdint>
#include <vector>

namespace engine {

using BlockTable = std::vector<int32_t>;

/// Blocks of block_size tokens needed to hold num_tokens tokens.
inline int64_t blocks_for(int64_t num_tokens, int block_size) { return (num_tokens + block_size - 1) / block_size; }

class BlockManager {
 public:
  /// Throws std::invalid_argument unless num_blocks >= 1 and block_size >= 1.
  BlockManager(int64_t num_blocks, int block_size);

  int block_size() const { return block_size_; }
  int64_t num_blocks() const { return static_cast<int64_t>(in_use_.size()); }
  int64_t num_free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t num_used_blocks() const { return num_blocks() - num_free_blocks(); }

  /// Blocks needed to hold num_tokens tokens.
  int64_t blocks_for(int64_t num_tokens) const { return engine::blocks_for(num_tokens, block_size_); }

  /// Whether `table` can grow to hold num_tokens tokens (a prompt chunk: the total after the chunk).
  bool can_allocate(const BlockTable& table, int64_t num_tokens) const;
  /// Grows `table` to hold num_tokens tokens. Throws std::logic_error when the pool is short (check first).
  void allocate(BlockTable& table, int64_t num_tokens);

  /// Whether one more token fits after num_tokens tokens (a new block is needed only at a block boundary).
  bool can_append(const BlockTable& table, int64_t num_tokens) const { return can_allocate(table, num_tokens + 1); }
  void append(BlockTable& table, int64_t num_tokens) { allocate(table, num_tokens + 1); }

  /// Returns all of `table`'s blocks to the pool and clears it. A block that is not in use (a double free,
  /// or an id from another pool) is a logic error: std::logic_error is thrown before anything is changed,
  /// so the free list never holds an id twice.
  void free(BlockTable& table);

 private:
  int block_size_;
  std::vector<int32_t> free_;   ///< LIFO stack of free ids (recently freed blocks are warm in cache)
  std::vector<uint8_t> in_use_; ///< [num_blocks] 1 while a table holds the block
};

}  // namespace engine
