// Device helpers shared by the paged attention kernels that split a context (attention.cu, attention_decode.cu):
// merging the splits' partials of one (token, head), either in the combine kernel or in the split block that
// finishes last (AttentionArgs::split_count), which saves the combine kernel's launch.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "backend/cuda/vec8.cuh"

namespace engine::cuda {

/// Merges the num_splits partial rows at `base` ([num_splits][hd + 2]: acc[hd], m, l) into out[0 .. hd-1]:
/// out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s over the splits with l_s > 0, in split order (the same
/// sums wherever it runs). Threads tid, tid + nthreads, ... take the dims. Reads through L2 (__ldcg): the rows
/// may have been written by other blocks of the same grid.
template <typename E>
__device__ __forceinline__ void merge_split_partials(const float* base, int num_splits, int hd, E* out, int tid,
                                                     int nthreads) {
  float M = -INFINITY;
  for (int s = 0; s < num_splits; ++s)
    if (__ldcg(base + s * (hd + 2) + hd + 1) > 0.f) M = fmaxf(M, __ldcg(base + s * (hd + 2) + hd));
  for (int d = tid; d < hd; d += nthreads) {
    float num = 0.f, den = 0.f;
    for (int s = 0; s < num_splits; ++s) {
      const float* p = base + s * (hd + 2);
      const float l = __ldcg(p + hd + 1);
      if (l > 0.f) {
        const float w = __expf(__ldcg(p + hd) - M);
        num += w * __ldcg(p + d);
        den += w * l;
      }
    }
    out[d] = from_f32<E>(num / den);
  }
}

/// Called by every thread of a split block after its partial row is written (and its last read of shared
/// memory done): counts the block in at split_count[entry] and, in the block that counts last, merges the
/// entry's partials into `out`, then resets the count for the next launch. One __threadfence() orders each
/// block's partial writes before its count; the last block's fence orders the count before its reads.
template <typename E>
__device__ __forceinline__ void merge_if_last_split(int* split_count, int64_t entry, const float* base,
                                                    int num_splits, int hd, E* out) {
  __shared__ int s_last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    const int prev = atomicAdd(split_count + entry, 1);
    s_last = prev == num_splits - 1;
    if (s_last) split_count[entry] = 0;  // every block of the entry has counted: the next launch starts at 0
  }
  __syncthreads();
  if (s_last) {
    __threadfence();
    merge_split_partials(base, num_splits, hd, out, threadIdx.x, blockDim.x);
  }
}

}  // namespace engine::cuda
