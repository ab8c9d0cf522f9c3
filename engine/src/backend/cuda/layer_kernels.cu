// Per-token kernels of one decoder layer: embedding gather, residual add + RMSNorm, SwiGLU.
// All are memory-bound: each reads its inputs once and writes its outputs once.
#include <cuda_bf16.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace engine::cuda {
namespace {

constexpr int kNormThreads = 256;

__global__ void embedding_kernel(const int32_t* __restrict__ tokens, const bf16* __restrict__ table,
                                 float* __restrict__ x, int dim) {
  const int t = blockIdx.x;
  const bf16* row = table + static_cast<int64_t>(tokens[t]) * dim;
  float* dst = x + static_cast<int64_t>(t) * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = __bfloat162float(row[i]);
}

// Block-wide sum; every thread gets the total. `red` holds one float per warp.
__device__ float block_sum(float v, float* red) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = blockDim.x / 32;
  __syncthreads();  // red may still be read by a previous call
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < nwarps; ++w) total += red[w];
  return total;
}

// One block per output row. Pass 1 forms v = x + delta (written back to x when asked) and sums v^2;
// pass 2 re-reads v (from x, or recomputes it) and writes the normalized bf16 row.
__global__ void add_rmsnorm_kernel(float* __restrict__ x, const bf16* __restrict__ delta,
                                   const float* __restrict__ w, bf16* __restrict__ out,
                                   const int32_t* __restrict__ rows, int dim, float eps, bool write_back) {
  __shared__ float red[kNormThreads / 32];
  const int r = blockIdx.x;
  const int64_t src = rows ? rows[r] : r;
  float* xr = x + src * dim;
  const bf16* dr = delta ? delta + src * dim : nullptr;
  float ss = 0.f;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = xr[i];
    if (dr) v += __bfloat162float(dr[i]);
    if (write_back) xr[i] = v;
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss, red) / dim + eps);
  bf16* o = out + static_cast<int64_t>(r) * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = xr[i];
    if (dr && !write_back) v += __bfloat162float(dr[i]);
    o[i] = __float2bfloat16(v * inv * w[i]);
  }
}

// Eight outputs per thread when hidden % 8 == 0 (16-byte loads and stores), else one.
__global__ void swiglu_vec8_kernel(const bf16* __restrict__ gu, bf16* __restrict__ out, int T, int hidden) {
  const int64_t chunks_per_row = hidden / 8;
  const int64_t n = T * chunks_per_row;
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < n;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = c / chunks_per_row, j = (c % chunks_per_row) * 8;
    const uint4 g4 = *reinterpret_cast<const uint4*>(gu + t * 2 * hidden + j);
    const uint4 u4 = *reinterpret_cast<const uint4*>(gu + t * 2 * hidden + hidden + j);
    const bf16* g = reinterpret_cast<const bf16*>(&g4);
    const bf16* u = reinterpret_cast<const bf16*>(&u4);
    uint4 o4;
    bf16* o = reinterpret_cast<bf16*>(&o4);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      const float gf = __bfloat162float(g[k]);
      o[k] = __float2bfloat16(gf / (1.f + __expf(-gf)) * __bfloat162float(u[k]));
    }
    *reinterpret_cast<uint4*>(out + t * hidden + j) = o4;
  }
}

__global__ void swiglu_scalar_kernel(const bf16* __restrict__ gu, bf16* __restrict__ out, int T, int hidden) {
  const int64_t n = static_cast<int64_t>(T) * hidden;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / hidden, j = i % hidden;
    const float gf = __bfloat162float(gu[t * 2 * hidden + j]);
    out[i] = __float2bfloat16(gf / (1.f + __expf(-gf)) * __bfloat162float(gu[t * 2 * hidden + hidden + j]));
  }
}

int grid_for(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<int>(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

}  // namespace

void embedding(const int32_t* tokens, const bf16* table, float* x, int T, int dim, cudaStream_t s) {
  if (T == 0) return;
  embedding_kernel<<<T, 256, 0, s>>>(tokens, table, x, dim);
  LLM_CUDA_LAUNCHED(embedding_kernel);
}

void add_rmsnorm(float* x, const bf16* delta, const float* w, bf16* out, const int32_t* rows, int n_rows,
                 int dim, float eps, bool write_back, cudaStream_t s) {
  if (n_rows == 0) return;
  add_rmsnorm_kernel<<<n_rows, kNormThreads, 0, s>>>(x, delta, w, out, rows, dim, eps, write_back);
  LLM_CUDA_LAUNCHED(add_rmsnorm_kernel);
}

void swiglu(const bf16* gu, bf16* out, int T, int hidden, cudaStream_t s) {
  if (T == 0) return;
  if (hidden % 8 == 0) {
    swiglu_vec8_kernel<<<grid_for(static_cast<int64_t>(T) * hidden / 8, 256), 256, 0, s>>>(gu, out, T, hidden);
  } else {
    swiglu_scalar_kernel<<<grid_for(static_cast<int64_t>(T) * hidden, 256), 256, 0, s>>>(gu, out, T, hidden);
  }
  LLM_CUDA_LAUNCHED(swiglu_kernel);
}

}  // namespace engine::cuda
