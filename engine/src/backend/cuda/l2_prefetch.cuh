// Device helper: warm the L2 cache with a read-only range that a later kernel of the step reads (the next
// GEMV's weights), issued by a kernel that leaves the memory bus mostly idle (decode attention at small batch:
// latency-bound). Each block of the grid takes one contiguous share of the range's 128-byte lines, its threads
// one line each in turn; prefetch.global.L2 returns at once (no register waits on it). Plain priority: the lines
// are the most recently used when the GEMV reads them a few microseconds later.
#pragma once

#include <cstddef>

namespace engine::cuda {

__device__ __forceinline__ void l2_prefetch_share(const void* base, size_t bytes) {
  if (base == nullptr || bytes == 0) return;
  constexpr size_t kLine = 128;
  const size_t blocks = size_t(gridDim.x) * gridDim.y * gridDim.z;
  const size_t b = blockIdx.x + size_t(gridDim.x) * (blockIdx.y + size_t(gridDim.y) * blockIdx.z);
  const size_t lines = (bytes + kLine - 1) / kLine;
  const size_t per = (lines + blocks - 1) / blocks;
  const size_t l0 = b * per, l1 = l0 + per < lines ? l0 + per : lines;
  const char* p = static_cast<const char*>(base);
  for (size_t l = l0 + threadIdx.x; l < l1; l += blockDim.x)
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p + l * kLine));
}

}  // namespace engine::cuda
