// The prefix cache's key of one full KV block: a hash of the block's tokens chained to the hash of the block
// before it, so equal keys mean equal tokens in this block and in everything before it (vLLM's and
// nano-vllm's scheme). The K/V of a block are a function of exactly those tokens, so a block with the same
// key can stand in for a block a sequence would compute itself.
#pragma once

#include <cstdint>
#include <span>

namespace engine {

using BlockHash = uint64_t;

/// The parent of a sequence's first block.
inline constexpr BlockHash kRootBlockHash = 0x6a09e667f3bcc908ull;

/// The key of a full block holding `tokens` (block_size of them) after a block whose key is `parent`.
/// 64 bits: the block manager also compares a hit's tokens with the stored ones, so a collision could only
/// pass between two prefixes whose earlier blocks collide (about 2^-64 per pair).
BlockHash hash_block(BlockHash parent, std::span<const int32_t> tokens);

}  // namespace engine
