// Per-token kernels of one decoder layer: embedding gather, residual add + RMSNorm, SwiGLU; each templated
// on the storage type E (bf16 or float, kernels.h). All are memory-bound: each reads its inputs once and
// writes its outputs once.
#include <cuda_bf16.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/row_ops.cuh"
#include "backend/cuda/vec8.cuh"

namespace engine::cuda {
namespace {

template <typename E>
__global__ void embedding_kernel(const int32_t* __restrict__ tokens, const E* __restrict__ table,
                                 float* __restrict__ x, int dim) {
  pdl_launch_dependents();
  pdl_wait();
  const int t = blockIdx.x;
  const E* row = table + static_cast<int64_t>(tokens[t]) * dim;
  float* dst = x + static_cast<int64_t>(t) * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = to_f32(row[i]);
}

// One block per output row. Pass 1 forms v = x + delta (written back to x when asked) and sums v^2;
// pass 2 re-reads v (from x, or recomputes it) and writes the normalized row.
// x, delta: f32 [*, dim]; out: E [n_rows, dim].
template <typename E>
__global__ void add_rmsnorm_kernel(float* __restrict__ x, const float* __restrict__ delta,
                                   const float* __restrict__ w, E* __restrict__ out,
                                   const int32_t* __restrict__ rows, int dim, float eps, bool write_back) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ float red[kNormThreads / 32];
  const int r = blockIdx.x;
  const int64_t src = rows ? rows[r] : r;
  float* xr = x + src * dim;
  const float* dr = delta ? delta + src * dim : nullptr;
  float ss = 0.f;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = xr[i];
    if (dr) v += dr[i];
    if (write_back) xr[i] = v;
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss, red) / dim + eps);
  E* o = out + static_cast<int64_t>(r) * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = xr[i];
    if (dr && !write_back) v += dr[i];
    o[i] = from_f32<E>(v * inv * w[i]);
  }
}

// The same for dim % 8 == 0 and dim <= 8 * kNormThreads * kNormMaxChunks: each thread keeps its chunks of 8
// values in registers, so x and delta are read once (16-byte loads) and the second pass touches only w.
// Chunk c covers elements c*8 .. c*8+7 of the row; thread i owns chunks i, i + kNormThreads, ... (row_ops.cuh,
// shared with the GEMV that fuses this norm).
template <typename E>
__global__ void add_rmsnorm_vec8_kernel(float* __restrict__ x, const float* __restrict__ delta,
                                        const float* __restrict__ w, E* __restrict__ out,
                                        const int32_t* __restrict__ rows, int dim, float eps, bool write_back) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ float red[kNormThreads / 32];
  const int r = blockIdx.x;
  const int64_t src = rows ? rows[r] : r;
  float* xr = x + src * dim;
  const float* dr = delta ? delta + src * dim : nullptr;
  add_rmsnorm_row(xr, dr, write_back && dr ? xr : nullptr, w, eps, out + static_cast<int64_t>(r) * dim, dim, red);
}

// Eight outputs per thread when hidden % 8 == 0 (16-byte loads and stores), else one.
// gu: E [T, 2*hidden] (gate columns 0..hidden-1, up columns hidden..2*hidden-1); out: E [T, hidden].
template <typename E>
__global__ void swiglu_vec8_kernel(const E* __restrict__ gu, E* __restrict__ out, int T, int hidden) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t chunks_per_row = hidden / 8;
  const int64_t n = T * chunks_per_row;
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < n;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = c / chunks_per_row, j = (c % chunks_per_row) * 8;
    const Pack8<E> g8 = ld8(gu + t * 2 * hidden + j);
    const Pack8<E> u8 = ld8(gu + t * 2 * hidden + hidden + j);
    float g[8], u[8], o[8];
    unpack8(g8, g);
    unpack8(u8, u);
    swiglu8(g, u, o);
    store8(out + t * hidden + j, o);
  }
}

template <typename E>
__global__ void swiglu_scalar_kernel(const E* __restrict__ gu, E* __restrict__ out, int T, int hidden) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t n = static_cast<int64_t>(T) * hidden;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / hidden, j = i % hidden;
    const float gf = to_f32(gu[t * 2 * hidden + j]);
    out[i] = from_f32<E>(gf / (1.f + __expf(-gf)) * to_f32(gu[t * 2 * hidden + hidden + j]));
  }
}

int grid_for(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<int>(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

}  // namespace

template <typename E>
void embedding(const int32_t* tokens, const E* table, float* x, int T, int dim, cudaStream_t s) {
  if (T == 0) return;
  launch_pdl(embedding_kernel<E>, T, 256, 0, s, tokens, table, x, dim);
}

template <typename E>
void add_rmsnorm(float* x, const float* delta, const float* w, E* out, const int32_t* rows, int n_rows, int dim,
                 float eps, bool write_back, cudaStream_t s) {
  if (n_rows == 0) return;
  if (dim % 8 == 0 && dim <= 8 * kNormThreads * kNormMaxChunks)
    launch_pdl(add_rmsnorm_vec8_kernel<E>, n_rows, kNormThreads, 0, s, x, delta, w, out, rows, dim, eps, write_back);
  else
    launch_pdl(add_rmsnorm_kernel<E>, n_rows, kNormThreads, 0, s, x, delta, w, out, rows, dim, eps, write_back);
}

template <typename E>
void swiglu(const E* gu, E* out, int T, int hidden, cudaStream_t s) {
  if (T == 0) return;
  if (hidden % 8 == 0) {
    launch_pdl(swiglu_vec8_kernel<E>, grid_for(static_cast<int64_t>(T) * hidden / 8, 256), 256, 0, s, gu, out, T, hidden);
  } else {
    launch_pdl(swiglu_scalar_kernel<E>, grid_for(static_cast<int64_t>(T) * hidden, 256), 256, 0, s, gu, out, T, hidden);
  }
}

#define LLM_INSTANTIATE(E)                                                                                   \
  template void embedding<E>(const int32_t*, const E*, float*, int, int, cudaStream_t);                      \
  template void add_rmsnorm<E>(float*, const float*, const float*, E*, const int32_t*, int, int, float, bool, \
                               cudaStream_t);                                                                \
  template void swiglu<E>(const E*, E*, int, int, cudaStream_t);
LLM_INSTANTIATE(bf16)
LLM_INSTANTIATE(float)
#undef LLM_INSTANTIATE

}  // namespace engine::cuda
