// Paged KV cache bookkeeping. The backend holds the memory (num_blocks blocks of block_size tokens, all
// layers); the BlockManager only hands out block ids. Each sequence owns a block table: block i holds the
// K/V of its tokens [i * block_size, (i + 1) * block_size). Not thread-safe: the engine thread owns it.
//
// With prefix caching a full block whose K/V are computed can be registered under its key (kv/block_hash.h);
// a sequence admitted later whose tokens start with the same full blocks takes those blocks into its own
// table instead of computing them. Blocks are reference-counted: a table holds a reference to each of its
// blocks. A block no table holds is free; if it is registered it keeps its K/V and its key and waits in an
// LRU, where a lookup can still hit it, until an allocation finds no unregistered free block and evicts it
// (the least recently freed first). Every block is in exactly one of three states: held (refs > 0), free
// and unregistered, or free and cached (in the LRU). A registered block is never written: a sequence writes
// K/V only at positions past what it computed or was given, which lie in blocks it allocated itself.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "kv/block_hash.h"

namespace engine {

using BlockTable = std::vector<int32_t>;

/// Blocks of block_size tokens needed to hold num_tokens tokens.
inline int64_t blocks_for(int64_t num_tokens, int block_size) { return (num_tokens + block_size - 1) / block_size; }

/// Consecutive full blocks of one sequence as the prefix cache sees them: its blocks first, first + 1, ...;
/// hashes[k] is the key of block first + k and tokens[k * block_size, (k + 1) * block_size) its tokens.
struct FullBlocks {
  size_t first = 0;
  std::span<const BlockHash> hashes;
  std::span<const int32_t> tokens;
};

class BlockManager {
 public:
  /// Throws std::invalid_argument unless num_blocks >= 1 and block_size >= 1.
  BlockManager(int64_t num_blocks, int block_size, bool enable_prefix_caching = false);

  int block_size() const { return block_size_; }
  int64_t num_blocks() const { return static_cast<int64_t>(refs_.size()); }
  /// Blocks an allocation can take: unregistered free blocks and cached blocks no table holds.
  int64_t num_free_blocks() const { return static_cast<int64_t>(free_.size()) + lru_size_; }
  /// Blocks some table holds.
  int64_t num_used_blocks() const { return num_blocks() - num_free_blocks(); }
  /// Registered blocks (held or in the LRU): the K/V a lookup can find.
  int64_t num_cached_blocks() const { return static_cast<int64_t>(cached_.size()); }
  /// Free blocks that are cached (what an allocation may evict).
  int64_t num_evictable_blocks() const { return lru_size_; }
  /// Tables holding block `id` (0 when free).
  int32_t ref_count(int32_t id) const { return refs_.at(static_cast<size_t>(id)); }
  /// Whether block `id` is registered in the prefix cache (its K/V must not change while it is).
  bool is_cached(int32_t id) const { return prefix_caching_ && registered_.at(static_cast<size_t>(id)); }

  /// Blocks needed to hold num_tokens tokens.
  int64_t blocks_for(int64_t num_tokens) const { return engine::blocks_for(num_tokens, block_size_); }

  /// Whether `table` can grow to hold num_tokens tokens (a prompt chunk: the total after the chunk).
  bool can_allocate(const BlockTable& table, int64_t num_tokens) const;
  /// Grows `table` to hold num_tokens tokens, from unregistered free blocks first, then by evicting the
  /// least recently freed cached block. Throws std::logic_error when the pool is short (check first).
  void allocate(BlockTable& table, int64_t num_tokens);

  /// Whether one more token fits after num_tokens tokens (a new block is needed only at a block boundary).
  bool can_append(const BlockTable& table, int64_t num_tokens) const { return can_allocate(table, num_tokens + 1); }
  void append(BlockTable& table, int64_t num_tokens) { allocate(table, num_tokens + 1); }

  /// Drops `table`'s reference to each of its blocks and clears it. A block no table holds any more goes to
  /// the LRU when it is registered (the table's last block first, so a prefix outlives its tail), else to
  /// the free list. A block that is not held, an id from another pool, or an id twice in the table is a
  /// logic error: std::logic_error is thrown before anything is changed, so no count ever goes negative.
  void free(BlockTable& table);

  // ---- prefix caching (all of these find nothing and change nothing when it is off)

  /// The registered blocks holding the longest run of `blocks` (first == 0) from the sequence's start:
  /// block i matches when a registered block has key hashes[i] and the same tokens. Changes nothing.
  std::vector<int32_t> find_cached_prefix(const FullBlocks& blocks) const;
  /// Whether an empty table can take `prefix` (from find_cached_prefix) and then grow to num_tokens tokens:
  /// cached blocks of the prefix that sit in the LRU stop being free when taken.
  bool can_allocate_with_prefix(std::span<const int32_t> prefix, int64_t num_tokens) const;
  /// Appends `prefix` to the empty `table`, taking a reference to each block (out of the LRU where it waits).
  /// Throws std::logic_error for a non-empty table or a block that is not registered.
  void take_cached_prefix(BlockTable& table, std::span<const int32_t> prefix);
  /// Registers table[blocks.first + k] under blocks.hashes[k]; the caller has computed their K/V.
  /// A key already registered to another block (two sequences computed the same prefix at once) keeps
  /// that block; this table's copy stays unregistered and is freed as usual.
  void cache_full_blocks(const BlockTable& table, const FullBlocks& blocks);
  /// Forgets every registered block (vLLM's reset_prefix_cache): no later lookup finds one. A cached free
  /// block becomes an ordinary free block; a held block stays in its tables and is freed as unregistered.
  /// Returns the number of blocks that were registered.
  int64_t reset_prefix_cache();

 private:
  static constexpr int32_t kNone = -1;

  int32_t take_free_block();  ///< an unregistered free block, else the evicted LRU head
  /// Throws std::logic_error unless blocks.tokens holds every block of blocks.hashes.
  void check_tokens_cover(const FullBlocks& blocks, const char* who) const;
  bool tokens_match(int32_t id, std::span<const int32_t> tokens) const;
  void lru_push_back(int32_t id);
  void lru_remove(int32_t id);

  int block_size_;
  bool prefix_caching_;
  std::vector<int32_t> refs_;   ///< [num_blocks] tables holding each block
  std::vector<int32_t> free_;   ///< LIFO stack of unregistered free ids (recently freed blocks are warm in cache)
  std::vector<uint8_t> mark_;   ///< [num_blocks] scratch of free(): ids seen in the table being freed
  // Prefix cache: key -> block, and for each block its key and tokens while it is registered.
  std::unordered_map<BlockHash, int32_t> cached_;
  std::vector<BlockHash> key_;          ///< [num_blocks]
  std::vector<uint8_t> registered_;     ///< [num_blocks]
  std::vector<int32_t> block_tokens_;   ///< [num_blocks * block_size] tokens of registered blocks
  // The LRU of free cached blocks: an intrusive doubly linked list over block ids, head evicted first.
  std::vector<int32_t> lru_prev_, lru_next_;
  int32_t lru_head_ = kNone, lru_tail_ = kNone;
  int64_t lru_size_ = 0;
};

}  // namespace engine
