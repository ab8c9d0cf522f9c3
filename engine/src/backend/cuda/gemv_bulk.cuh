// The bulk prefix of a unit-layout GEMV block (gemv_preload.cu since v24, gemv.cu's one-row GEMVs since v25;
// docs/cuda-notes.md): before its PDL wait one thread of the block asks the bulk-copy unit (cp.async.bulk) for
// the first bytes of the block's weight rows (contiguous in memory) into shared memory, in chunks of
// kBulkChunk bytes with an mbarrier each, so they are in flight while the kernel before it finishes, without
// registers held for them. After the wait a warp computes a preloaded unit once the chunks holding it have
// landed, and the block waits for every chunk before it exits (a chunk may hold bytes of a unit past the prefix,
// which no warp waits for; a block must not leave with copies into its shared memory in flight).
#pragma once

#include <cstdint>

#include "backend/cuda/gemv_unit.cuh"
#include "backend/cuda/hopper.cuh"

namespace engine::cuda {

constexpr int kBulkChunk = 16 * 1024;  // bytes a bulk copy (and an mbarrier)
constexpr int kBulkMaxChunks = 16;     // so at most 256 KB a block
constexpr size_t kBulkBarBytes = kBulkMaxChunks * sizeof(uint64_t);

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

/// One thread, before the block's last __syncthreads(): every chunk has landed.
__device__ __forceinline__ void bulk_drain(uint64_t* bar, const BulkPrefix& p) {
  for (int c = 0; c < p.chunks; ++c) hopper::mbar_wait(&bar[c], 0);
}

}  // namespace engine::cuda
