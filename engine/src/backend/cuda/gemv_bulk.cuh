// The bulk prefix of a unit-layout GEMV block (gemv_preload.cu since v24, gemv.cu's one-row GEMVs since v25;
// docs/cuda-notes.md): before its PDL wait one thread of the block asks the bulk-copy unit (cp.async.bulk) for
// the first bytes of the block's weight rows (contiguous in memory) into shared memory, in chunks of
// kBulkChunk bytes with an mbarrier each, so they are in flight while the kernel before it finishes, without
// registers held for them. After the wait a warp computes a preloaded unit once the chunks holding it have
// landed, and the block waits for every chunk before it exits (a chunk may hold bytes of a unit past the prefix,
// which no warp waits for; a block must not leave with copies into its shared memory in flight).
#pragma once

#include <algorithm>
#include <cstdint>

#include "backend/cuda/gemv_unit.cuh"
#include "backend/cuda/hopper.cuh"

namespace engine::cuda {

constexpr int kBulkChunk = 16 * 1024;  // bytes a bulk copy (and an mbarrier)
constexpr int kBulkMaxChunks = 16;     // so at most 256 KB a block
constexpr size_t kBulkBarBytes = kBulkMaxChunks * sizeof(uint64_t);

/// A bulk-prefix block's shared memory: [the prefix, 128-aligned] [x: M rows of K bf16] [the units' sums, M a
/// unit] [the barriers]. With a prefix of 0 the first two offsets are those of a block without one.
__host__ __device__ inline size_t bulk_x_offset(int bulk) { return (static_cast<size_t>(bulk) + 127) / 128 * 128; }
__host__ __device__ inline size_t bulk_part_offset(int bulk, int M, int K) {
  return bulk_x_offset(bulk) + static_cast<size_t>(M) * K * sizeof(__nv_bfloat16);  // K % 8 == 0: 16-byte aligned
}
__host__ __device__ inline size_t bulk_bar_offset(int bulk, int M, int K, int rows_per_block) {
  return (bulk_part_offset(bulk, M, K) + static_cast<size_t>(rows_per_block) * unit_count(K) * M * 4 + 7) / 8 * 8;
}
/// The whole of it for one row of x.
inline size_t bulk_smem(int bulk, int K, int rows_per_block) {
  return bulk_bar_offset(bulk, 1, K, rows_per_block) + kBulkBarBytes;
}

/// The bytes a block of rows_per_block rows of K values copies for a request of `bytes` (host side): none for a
/// negative request, at most kBulkMaxChunks chunks and the block's rows, a multiple of 16.
inline int clamp_bulk_bytes(int bytes, int K, int rows_per_block) {
  const long long b = std::min<long long>({static_cast<long long>(std::max(bytes, 0)),
                                           1LL * kBulkMaxChunks * kBulkChunk, 2LL * rows_per_block * K});
  return static_cast<int>(b / 16 * 16);
}

/// What a block of R rows of K values copies for a requested prefix of `preload` bytes.
struct BulkPrefix {
  long long bytes = 0;  // copied: the request, at most the block's rows, a multiple of 16
  int chunks = 0;       // bulk copies (mbarriers)
  int units = 0;        // the block's units [0, units) lie whole within those bytes
};

__device__ __forceinline__ BulkPrefix bulk_prefix(int preload, int K, int R) {
  BulkPrefix p;
  p.bytes = min(static_cast<long long>(preload), 2LL * R * K) / 16 * 16;
  p.chunks = static_cast<int>((p.bytes + kBulkChunk - 1) / kBulkChunk);
  // Units go row by row, 2 KB each but a row's last when K % kUnitValues != 0.
  const long long row_bytes = 2LL * K;
  const int S = unit_count(K);
  const long long rows = min(static_cast<long long>(R), p.bytes / row_bytes);
  if (rows == R) {
    p.units = R * S;
  } else {
    const long long rem = p.bytes - rows * row_bytes;
    p.units = static_cast<int>(rows) * S +
              static_cast<int>(min(static_cast<long long>(S - 1), rem / (2LL * kUnitValues)));
  }
  return p;
}

/// One thread: the barriers' initialisation and the copies of p.bytes from src into dst. The block must pass a
/// __syncthreads() before any thread waits on a barrier.
__device__ __forceinline__ void bulk_issue(uint8_t* dst, const uint8_t* src, const BulkPrefix& p, uint64_t* bar) {
  for (int c = 0; c < p.chunks; ++c) hopper::mbar_init(&bar[c], 1);
  hopper::fence_barrier_init();
  for (int c = 0; c < p.chunks; ++c) {
    const uint32_t n = static_cast<uint32_t>(min(static_cast<long long>(kBulkChunk), p.bytes - 1LL * c * kBulkChunk));
    hopper::mbar_arrive_expect_tx(&bar[c], n);
    hopper::bulk_load(dst + size_t(c) * kBulkChunk, src + size_t(c) * kBulkChunk, n, &bar[c]);
  }
}

/// Waits until the chunks holding the block's unit u (S units a row of K values) have landed.
__device__ __forceinline__ void bulk_wait_unit(uint64_t* bar, int u, int S, int K) {
  const long long r = u / S, seg = u % S;
  const long long first = 2LL * (r * K + seg * kUnitValues);
  const long long last = 2LL * (r * K + min(static_cast<long long>(K), (seg + 1) * kUnitValues)) - 1;
  hopper::mbar_wait(&bar[first / kBulkChunk], 0);
  hopper::mbar_wait(&bar[last / kBulkChunk], 0);
}

/// Each warp of `warps` computes its share of the preloaded units [0, p.units) from shared memory (wsm, the
/// block's rows from its first), x in xs, each unit's sum to part[u]: the units and arithmetic of the streamed
/// ones (load_unit, unit_dot), so the same bits.
template <bool IntCvt>
__device__ __forceinline__ void bulk_units(const BulkPrefix& p, uint64_t* bar, const __nv_bfloat16* wsm,
                                           const __nv_bfloat16* xs, float* part, int S, int K, int warp, int warps,
                                           int lane) {
  for (int u = warp; u < p.units; u += warps) {
    bulk_wait_unit(bar, u, S, K);
    uint4 sv[kUnitSlices];
    load_unit(sv, wsm + static_cast<int64_t>(u / S) * K, u % S, lane, K);
    float acc[1];
    unit_dot<1, IntCvt>(sv, xs, u % S, lane, K, acc);
    if (lane == 0) part[u] = acc[0];
  }
}

/// One thread, before the block's last __syncthreads(): every chunk has landed.
__device__ __forceinline__ void bulk_drain(uint64_t* bar, const BulkPrefix& p) {
  for (int c = 0; c < p.chunks; ++c) hopper::mbar_wait(&bar[c], 0);
}

}  // namespace engine::cuda
