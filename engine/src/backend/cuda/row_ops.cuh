// Device pieces shared by the standalone per-token kernels (layer_kernels.cu) and the fused GEMVs (gemv.cu)
// that compute the same inputs themselves: SwiGLU of 8 values, the two passes of the register RMSNorm, and the
// rows the fused GEMVs make from them (gemv.cu, gemv_ordered.cu). One
// definition each, so a fused kernel rounds exactly where the kernel it replaces does and gives the same bits.
#pragma once

#include <cuda_bf16.h>

#include "backend/cuda/vec8.cuh"

namespace engine::cuda {

constexpr int kNormThreads = 256;  ///< threads that hold a row in the register RMSNorm
constexpr int kNormMaxChunks = 4;  ///< chunks of 8 per thread: rows up to 8 * 256 * 4 = 8192 values

/// o = silu(g) * u, elementwise over 8 values.
__device__ __forceinline__ void swiglu8(const float* g, const float* u, float* o) {
#pragma unroll
  for (int k = 0; k < 8; ++k) o[k] = g[k] / (1.f + __expf(-g[k])) * u[k];
}

/// Block-wide sum; every thread gets the total. `red` holds one float per warp.
__device__ __forceinline__ float block_sum(float v, float* red) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = blockDim.x / 32;
  __syncthreads();  // red may still be read by a previous call
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < nwarps; ++w) total += red[w];
  return total;
}

/// Pass 1 of the register RMSNorm for thread t < kNormThreads of a row of `chunks` chunks of 8: v = xr (+ dr)
/// for chunks t, t + 256, ... (kept in v), stored to wb when wb is set; returns the thread's sum of v^2.
/// Threads t >= kNormThreads hold nothing and return 0 (adding 0 to the block's sum changes no bit).
__device__ __forceinline__ float rms_pass1(const float* __restrict__ xr, const float* __restrict__ dr,
                                           float* __restrict__ wb, int chunks, int t, float (&v)[kNormMaxChunks][8]) {
  float ss = 0.f;
  if (t >= kNormThreads) return ss;
#pragma unroll
  for (int k = 0; k < kNormMaxChunks; ++k) {
    const int c = t + k * kNormThreads;
    if (c >= chunks) break;
    load8(xr + c * 8, v[k]);
    if (dr) {
      float d[8];
      load8(dr + c * 8, d);
#pragma unroll
      for (int j = 0; j < 8; ++j) v[k][j] += d[j];
    }
    if (wb) store8(wb + c * 8, v[k]);
#pragma unroll
    for (int j = 0; j < 8; ++j) ss += v[k][j] * v[k][j];
  }
  return ss;
}

/// Pass 2: o[c*8 ..] = E(v * inv * w) for the chunks rms_pass1 gave thread t.
template <typename E>
__device__ __forceinline__ void rms_pass2(const float (&v)[kNormMaxChunks][8], const float* __restrict__ w, float inv,
                                          E* o, int chunks, int t) {
  if (t >= kNormThreads) return;
#pragma unroll
  for (int k = 0; k < kNormMaxChunks; ++k) {
    const int c = t + k * kNormThreads;
    if (c >= chunks) break;
    float wv[8], y[8];
    load8(w + c * 8, wv);
#pragma unroll
    for (int j = 0; j < 8; ++j) y[j] = v[k][j] * inv * wv[j];
    store8(o + c * 8, y);
  }
}

/// The input a fused GEMV makes for itself in shared memory, one row: xs = bf16(silu(gate) * up) for
/// gu = gate [K] then up [K], the block's threads striding over chunks of 8 (as swiglu_vec8_kernel rounds).
__device__ __forceinline__ void swiglu_row(const bf16* __restrict__ gu, bf16* xs, int K) {
  for (int c = threadIdx.x; c < K / 8; c += blockDim.x) {
    float g[8], u[8], o[8];
    load8(gu + c * 8, g);
    load8(gu + K + c * 8, u);
    swiglu8(g, u, o);
    store8(xs + c * 8, o);
  }
}

/// xs = E(RMSNorm(x_in + delta) * norm_w), one row of K <= 8 * kNormThreads * kNormMaxChunks (K % 8 == 0): the
/// register RMSNorm of add_rmsnorm_vec8_kernel, which runs it per row, and of the fused GEMVs, which run it into
/// shared memory (the block needs at least kNormThreads threads; `red` one float per warp); x_in + delta is also
/// written to wb when wb is set (wb may be x_in).
template <typename E>
__device__ __forceinline__ void add_rmsnorm_row(const float* x_in, const float* __restrict__ delta, float* wb,
                                                const float* __restrict__ norm_w, float eps, E* xs, int K,
                                                float* red) {
  float v[kNormMaxChunks][8];
  const int chunks = K / 8;
  const float ss = rms_pass1(x_in, delta, wb, chunks, threadIdx.x, v);
  const float inv = rsqrtf(block_sum(ss, red) / K + eps);
  rms_pass2(v, norm_w, inv, xs, chunks, threadIdx.x);
}

}  // namespace engine::cuda
