// test-deps: engine_internals
// PagedIndex (backend/cuda/paged_index.h): the block and offset of a position by a multiply, as the CUDA
// attention and RoPE kernels compute them, equal to / and % for every block size 1..4096 at positions across the
// whole range they take (0 .. 2^31 - 1), powers of two (16, the default) and the sizes with the largest
// multiplier error alike. Plain C++: runs without a GPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "backend/cuda/paged_index.h"

namespace {

TEST(PagedIndex, BlockAndOffsetAreDivisionAndRemainder) {
  std::mt19937_64 rng(12);
  std::uniform_int_distribution<int32_t> any(0, INT32_MAX);
  std::vector<int32_t> positions = {0, 1, 2, 15, 16, 17, 255, 256, 4095, 4096, 1 << 20, INT32_MAX - 1, INT32_MAX};
  for (int i = 0; i < 200; ++i) positions.push_back(any(rng));
  for (int bs = 1; bs <= 4096; ++bs) {
    const engine::cuda::PagedIndex pi(bs);
    std::vector<int32_t> at = positions;
    // Around multiples of the size, where a rounding error would show first.
    for (int64_t q : {int64_t{1}, int64_t{7}, int64_t{1000}, int64_t{INT32_MAX} / bs})
      for (int64_t dq = -1; dq <= 1; ++dq) {
        const int64_t v = q * bs + dq;
        if (v >= 0 && v <= INT32_MAX) at.push_back(static_cast<int32_t>(v));
      }
    for (int32_t pos : at) {
      ASSERT_EQ(pi.block(pos), pos / bs) << "block size " << bs << " position " << pos;
      ASSERT_EQ(pi.offset(pos), pos % bs) << "block size " << bs << " position " << pos;
    }
  }
}

// row / row_of: the [num_blocks, nkv, block_size] cache row the kernels address, through a block table with gaps.
TEST(PagedIndex, RowIsTheCacheLayoutsRow) {
  const std::vector<int32_t> bt = {7, 0, 123456, 3};
  for (int bs : {1, 7, 16, 64}) {
    const engine::cuda::PagedIndex pi(bs);
    for (int nkv : {1, 8, 32})
      for (int h : {0, nkv - 1})
        for (int pos = 0; pos < 4 * bs; pos += (bs > 4 ? 3 : 1)) {
          const int64_t want = (int64_t{bt[pos / bs]} * nkv + h) * bs + pos % bs;
          ASSERT_EQ(pi.row_of(bt.data(), pos, nkv, h), want) << "bs " << bs << " nkv " << nkv << " pos " << pos;
          ASSERT_EQ(pi.row(bt[pos / bs], nkv, h, pos % bs), want);
        }
  }
}

}  // namespace
