// Greedy token choice on the GPU, so only token ids cross to the host each step; plus a random fill
// used by tests and benchmarks (never timing zeros).
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cfloat>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/vec8.cuh"

namespace engine::cuda {
namespace {

constexpr int kArgmaxThreads = 512;

// (value, index) with "better" = larger value, then smaller index; NaN loses to everything.
__device__ __forceinline__ bool better(float v, int i, float bv, int bi) {
  if (v != v) return false;
  return v > bv || (v == bv && i < bi);
}

// One block per row: each thread scans a strided slice, then warp shuffles and one shared-memory round.
__global__ void argmax_kernel(const float* __restrict__ logits, int32_t* __restrict__ ids, int vocab) {
  pdl_launch_dependents();
  pdl_wait();
  const float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  float bv = -INFINITY;
  int bi = vocab;  // sentinel index: loses every tie, so -inf logits still win over it
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
    const float v = row[j];
    if (better(v, j, bv, bi)) { bv = v; bi = j; }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (better(ov, oi, bv, bi)) { bv = ov; bi = oi; }
  }
  __shared__ float sv[kArgmaxThreads / 32];
  __shared__ int si[kArgmaxThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) { sv[warp] = bv; si[warp] = bi; }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kArgmaxThreads / 32; ++w)
      if (better(sv[w], si[w], bv, bi)) { bv = sv[w]; bi = si[w]; }
    ids[blockIdx.x] = bi < vocab ? bi : 0;  // an all-NaN row gives 0
  }
}

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

template <typename E>
__global__ void fill_uniform_kernel(E* p, int64_t n, float amp, uint64_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint64_t r = mix64(seed * 0x632be59bd9b4e019ull + static_cast<uint64_t>(i));
    const float u = static_cast<float>(r >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    p[i] = from_f32<E>((2.f * u - 1.f) * amp);
  }
}

__global__ void fill_uniform_fp8_kernel(uint8_t* p, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint64_t r = mix64(seed * 0x632be59bd9b4e019ull + static_cast<uint64_t>(i));
    const float u = static_cast<float>(r >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    p[i] = __nv_cvt_float_to_fp8(2.f * u - 1.f, __NV_SATFINITE, __NV_E4M3);
  }
}

}  // namespace

void fill_uniform_fp8(uint8_t* p, int64_t n, uint64_t seed, cudaStream_t s) {
  if (n == 0) return;
  fill_uniform_fp8_kernel<<<1024, 256, 0, s>>>(p, n, seed);
  LLM_CUDA_LAUNCHED(fill_uniform_fp8_kernel);
}

void argmax_rows(const float* logits, int32_t* ids, int rows, int vocab, cudaStream_t s) {
  if (rows == 0) return;
  launch_pdl(argmax_kernel, rows, kArgmaxThreads, 0, s, logits, ids, vocab);
}

template <typename E>
void fill_uniform(E* p, int64_t n, float amp, uint64_t seed, cudaStream_t s) {
  if (n == 0) return;
  fill_uniform_kernel<E><<<1024, 256, 0, s>>>(p, n, amp, seed);
  LLM_CUDA_LAUNCHED(fill_uniform_kernel);
}

template void fill_uniform<bf16>(bf16*, int64_t, float, uint64_t, cudaStream_t);
template void fill_uniform<float>(float*, int64_t, float, uint64_t, cudaStream_t);

}  // namespace engine::cuda
