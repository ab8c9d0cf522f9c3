// Device helpers: warm the L2 cache with read-only bytes (weights) a kernel reads a little later, while the
// memory bus would otherwise idle: decode attention at small batch (latency-bound) prefetching the next GEMV's
// weights, or a GEMV's block prefetching the start of its own weights before it waits on the kernel before it
// (programmatic dependent launch: the previous kernel's tail). prefetch.global.L2 returns at once (no register
// waits on it). Plain priority: the lines are the most recently used when they are read a few microseconds later.
#pragma once

#include <cstddef>

namespace engine::cuda {

/// The 128-byte line holding p into L2.
__device__ __forceinline__ void l2_prefetch_line(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

/// The block's threads prefetch the 128-byte lines of [base, base + bytes) into L2, one line each in turn.
__device__ __forceinline__ void l2_prefetch_block(const void* base, size_t bytes) {
  constexpr size_t kLine = 128;
  const char* p = static_cast<const char*>(base);
  const size_t lines = (bytes + kLine - 1) / kLine;
  const size_t tid = threadIdx.x + size_t(blockDim.x) * (threadIdx.y + size_t(blockDim.y) * threadIdx.z);
  const size_t nthreads = size_t(blockDim.x) * blockDim.y * blockDim.z;
  for (size_t l = tid; l < lines; l += nthreads) l2_prefetch_line(p + l * kLine);
}

/// The calling warp's 32 lanes prefetch the 128-byte lines of [base, base + bytes) into L2, one line each in turn.
__device__ __forceinline__ void l2_prefetch_warp(const void* base, size_t bytes) {
  constexpr size_t kLine = 128;
  const char* p = static_cast<const char*>(base);
  for (size_t l = threadIdx.x % 32; l * kLine < bytes; l += 32) l2_prefetch_line(p + l * kLine);
}

/// Every block of the grid prefetches one contiguous share of [base, base + bytes) (nothing when base is null).
__device__ __forceinline__ void l2_prefetch_share(const void* base, size_t bytes) {
  if (base == nullptr || bytes == 0) return;
  constexpr size_t kLine = 128;
  const size_t blocks = size_t(gridDim.x) * gridDim.y * gridDim.z;
  const size_t b = blockIdx.x + size_t(gridDim.x) * (blockIdx.y + size_t(gridDim.y) * blockIdx.z);
  const size_t lines = (bytes + kLine - 1) / kLine;
  const size_t per = (lines + blocks - 1) / blocks;
  const size_t l0 = b * per, l1 = l0 + per < lines ? l0 + per : lines;
  if (l0 < l1) l2_prefetch_block(static_cast<const char*>(base) + l0 * kLine, (l1 - l0) * kLine);
}

}  // namespace engine::cuda
