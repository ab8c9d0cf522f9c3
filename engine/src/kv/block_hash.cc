#include "kv/block_hash.h"

namespace engine {

namespace {

// Murmur3's 64-bit finalizer: every input bit flips about half of the output bits.
uint64_t avalanche(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

}  // namespace

BlockHash hash_block(BlockHash parent, std::span<const int32_t> tokens) {
  // Two tokens per round through the finalizer; the length goes in too, so blocks of different sizes (a
  // pool rebuilt with another block_size) never share keys.
  uint64_t h = avalanche(parent ^ (static_cast<uint64_t>(tokens.size()) << 32));
  size_t i = 0;
  for (; i + 1 < tokens.size(); i += 2)
    h = avalanche(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(tokens[i])) |
                       static_cast<uint64_t>(static_cast<uint32_t>(tokens[i + 1])) << 32));
  if (i < tokens.size()) h = avalanche(h ^ static_cast<uint32_t>(tokens[i]) ^ 0x9e3779b97f4a7c15ull);
  return h;
}

}  // namespace engine
