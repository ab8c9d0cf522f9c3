#include "kv/block_manager.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace engine {

BlockManager::BlockManager(int64_t num_blocks, int block_size, bool enable_prefix_caching)
    : block_size_(block_size), prefix_caching_(enable_prefix_caching) {
  if (block_size < 1) throw std::invalid_argument("BlockManager: block_size must be >= 1, got " + std::to_string(block_size));
  if (num_blocks < 1 || num_blocks > std::numeric_limits<int32_t>::max())
    throw std::invalid_argument("BlockManager: num_blocks must be in [1, 2^31), got " + std::to_string(num_blocks));
  const size_t n = static_cast<size_t>(num_blocks);
  refs_.assign(n, 0);
  mark_.assign(n, 0);
  free_.reserve(n);
  // Pushed in reverse so that allocation hands out 0, 1, 2, ... on a fresh pool (easier to read in logs).
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
  if (prefix_caching_) {
    key_.assign(n, 0);
    registered_.assign(n, 0);
    block_tokens_.assign(n * static_cast<size_t>(block_size), 0);
    lru_prev_.assign(n, kNone);
    lru_next_.assign(n, kNone);
  }
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
    const int32_t b = take_free_block();
    refs_[b] = 1;
    table.push_back(b);
  }
}

int32_t BlockManager::take_free_block() {
  if (!free_.empty()) {
    const int32_t b = free_.back();
    free_.pop_back();
    return b;
  }
  // Evict: the cached block freed longest ago loses its key (its K/V will be overwritten).
  const int32_t b = lru_head_;
  lru_remove(b);
  cached_.erase(key_[b]);
  registered_[b] = 0;
  return b;
}

void BlockManager::free(BlockTable& table) {
  // Validate the whole table first: a bad id must leave the pool exactly as it was.
  std::string problem;
  size_t checked = 0;
  for (; checked < table.size(); ++checked) {
    const int32_t b = table[checked];
    if (b < 0 || b >= num_blocks())
      problem = "block id " + std::to_string(b) + " is outside the pool of " + std::to_string(num_blocks());
    else if (refs_[b] == 0)
      problem = "double free of block " + std::to_string(b);
    else if (mark_[b])
      problem = "block " + std::to_string(b) + " appears twice in one table";
    if (!problem.empty()) break;
    mark_[b] = 1;
  }
  for (size_t i = 0; i < checked; ++i) mark_[table[i]] = 0;
  if (!problem.empty()) throw std::logic_error("BlockManager::free: " + problem);
  // The last block first: it reaches the LRU before (and so is evicted before) the blocks ahead of it.
  for (auto it = table.rbegin(); it != table.rend(); ++it) {
    const int32_t b = *it;
    if (--refs_[b] > 0) continue;  // another table still holds it
    if (is_cached(b)) lru_push_back(b);
    else free_.push_back(b);
  }
  table.clear();
}

// ---------------------------------------------------------------- prefix caching

void BlockManager::check_tokens_cover(const FullBlocks& blocks, const char* who) const {
  if (blocks.tokens.size() < blocks.hashes.size() * block_size_)
    throw std::logic_error(std::string("BlockManager::") + who + ": " + std::to_string(blocks.tokens.size()) +
                           " tokens for " + std::to_string(blocks.hashes.size()) + " blocks");
}

bool BlockManager::tokens_match(int32_t id, std::span<const int32_t> tokens) const {
  const int32_t* stored = block_tokens_.data() + static_cast<size_t>(id) * block_size_;
  return std::equal(tokens.begin(), tokens.end(), stored);
}

std::vector<int32_t> BlockManager::find_cached_prefix(const FullBlocks& blocks) const {
  std::vector<int32_t> out;
  if (!prefix_caching_) return out;
  check_tokens_cover(blocks, "find_cached_prefix");
  if (blocks.first != 0) throw std::logic_error("BlockManager::find_cached_prefix: a prefix starts at block 0");
  for (size_t i = 0; i < blocks.hashes.size(); ++i) {
    const auto it = cached_.find(blocks.hashes[i]);
    if (it == cached_.end()) break;
    if (!tokens_match(it->second, blocks.tokens.subspan(i * block_size_, block_size_))) break;
    out.push_back(it->second);
  }
  return out;
}

bool BlockManager::can_allocate_with_prefix(std::span<const int32_t> prefix, int64_t num_tokens) const {
  int64_t taken_from_lru = 0;
  for (int32_t b : prefix)
    if (refs_.at(static_cast<size_t>(b)) == 0) ++taken_from_lru;
  const int64_t need = blocks_for(num_tokens) - static_cast<int64_t>(prefix.size());
  return need <= num_free_blocks() - taken_from_lru;
}

void BlockManager::take_cached_prefix(BlockTable& table, std::span<const int32_t> prefix) {
  if (!table.empty()) throw std::logic_error("BlockManager::take_cached_prefix: the table is not empty");
  for (int32_t b : prefix)
    if (b < 0 || b >= num_blocks() || !is_cached(b))
      throw std::logic_error("BlockManager::take_cached_prefix: block " + std::to_string(b) + " is not cached");
  for (int32_t b : prefix) {
    if (refs_[b]++ == 0) lru_remove(b);
    table.push_back(b);
  }
}

void BlockManager::cache_full_blocks(const BlockTable& table, const FullBlocks& blocks) {
  if (!prefix_caching_) return;
  check_tokens_cover(blocks, "cache_full_blocks");
  if (blocks.first + blocks.hashes.size() > table.size())
    throw std::logic_error("BlockManager::cache_full_blocks: blocks up to " +
                           std::to_string(blocks.first + blocks.hashes.size()) + " of a table of " +
                           std::to_string(table.size()));
  for (size_t k = 0; k < blocks.hashes.size(); ++k) {
    const int32_t b = table[blocks.first + k];
    const BlockHash h = blocks.hashes[k];
    if (refs_.at(static_cast<size_t>(b)) == 0)
      throw std::logic_error("BlockManager::cache_full_blocks: block " + std::to_string(b) + " is not held");
    if (registered_[b]) {  // taken from the cache, or registered by an earlier call
      if (key_[b] != h) throw std::logic_error("BlockManager::cache_full_blocks: block " + std::to_string(b) +
                                               " is registered under another key");
      continue;
    }
    if (!cached_.emplace(h, b).second) continue;  // another block holds this prefix already
    key_[b] = h;
    registered_[b] = 1;
    std::copy_n(blocks.tokens.begin() + static_cast<std::ptrdiff_t>(k * block_size_), block_size_,
                block_tokens_.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(b) * block_size_));
  }
}

int64_t BlockManager::reset_prefix_cache() {
  if (!prefix_caching_) return 0;
  const int64_t dropped = static_cast<int64_t>(cached_.size());
  // Free cached blocks leave the LRU head first, so the free stack hands out the most recently freed first.
  while (lru_head_ != kNone) {
    const int32_t b = lru_head_;
    lru_remove(b);
    free_.push_back(b);
  }
  for (const auto& [key, b] : cached_) registered_[b] = 0;
  cached_.clear();
  return dropped;
}

void BlockManager::lru_push_back(int32_t id) {
  lru_prev_[id] = lru_tail_;
  lru_next_[id] = kNone;
  if (lru_tail_ != kNone) lru_next_[lru_tail_] = id;
  else lru_head_ = id;
  lru_tail_ = id;
  ++lru_size_;
}

void BlockManager::lru_remove(int32_t id) {
  const int32_t p = lru_prev_[id], n = lru_next_[id];
  if (p != kNone) lru_next_[p] = n;
  else lru_head_ = n;
  if (n != kNone) lru_prev_[n] = p;
  else lru_tail_ = p;
  lru_prev_[id] = lru_next_[id] = kNone;
  --lru_size_;
}

}  // namespace engine
