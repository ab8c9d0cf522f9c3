// Where a position of a paged sequence sits in its block table: the block's index and the offset inside it,
// i.e. pos / block_size and pos % block_size, without a division in the loops that ask once per token per lane
// (decode attention asks 4 times an iteration, next to ~90 instructions of fp8 arithmetic; a division by a size
// known only at run time is a ~20-instruction sequence on the GPU). Division by a multiply (Granlund and
// Montgomery): with p = 31 + ceil(log2 d) and m = ceil(2^p / d), pos / d = (pos * m) >> p for 0 <= pos < 2^31,
// exactly (m d - 2^p < d makes the error under 1/d). A power of two (16, the default, and 1) has m = 2^31 and
// needs no division to set up; any other size divides once, when the index is made. Host and device: the CPU
// tests check it against / and % directly.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define LLM_PAGED_HD __host__ __device__ __forceinline__
#else
#define LLM_PAGED_HD inline
#endif

namespace engine::cuda {

struct PagedIndex {
  uint32_t d;  ///< block_size (>= 1)
  uint32_t m;  ///< ceil(2^p / d)
  uint32_t p;  ///< 31 + ceil(log2 d)

  LLM_PAGED_HD explicit PagedIndex(int block_size) : d(static_cast<uint32_t>(block_size)), m(0), p(31) {
    uint32_t k = 0;
    while ((1u << k) < d) ++k;  // ceil(log2 d)
    p = 31 + k;
    m = (d & (d - 1)) == 0 ? (1u << 31) : static_cast<uint32_t>(((uint64_t{1} << p) + d - 1) / d);
  }
  /// pos / block_size, for 0 <= pos < 2^31 (positions and cache slots are never negative).
  LLM_PAGED_HD int block(int pos) const {
    return static_cast<int>((static_cast<uint64_t>(static_cast<uint32_t>(pos)) * m) >> p);
  }
  /// pos % block_size.
  LLM_PAGED_HD int offset(int pos) const { return pos - block(pos) * static_cast<int>(d); }
  /// The row of (physical block, kv head, offset) in a layer's K or V cache, laid out [num_blocks, nkv,
  /// block_size, head_dim]: its elements start at row * head_dim, and an fp8 cache's scale is scales[row].
  LLM_PAGED_HD int64_t row(int physical_block, int nkv, int kv_head, int off) const {
    return (static_cast<int64_t>(physical_block) * nkv + kv_head) * static_cast<int64_t>(d) + off;
  }
  /// The row of position pos of a sequence whose block table is bt.
  LLM_PAGED_HD int64_t row_of(const int32_t* bt, int pos, int nkv, int kv_head) const {
    return row(bt[block(pos)], nkv, kv_head, offset(pos));
  }
};

}  // namespace engine::cuda

#undef LLM_PAGED_HD
