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

// The same for dim % 8 == 0 and dim <= 8 * kNormThreads * kMaxChunks: each thread keeps its chunks of 8
// values in registers, so x and delta are read once (16-byte loads) and the second pass touches only w.
constexpr int kMaxChunks = 4;
__global__ void add_rmsnorm_vec8_kernel(float* __restrict__ x, const bf16* __restrict__ delta,
                                        const float* __restrict__ w, bf16* __restrict__ out,
                                        const int32_t* __restrict__ rows, int dim, float eps, bool write_back) {
  __shared__ float red[kNormThreads / 32];
  const int r = blockIdx.x;
  const int64_t src = rows ? rows[r] : r;
  float* xr = x + src * dim;
  const bf16* dr = delta ? delta + src * dim : nullptr;
  const int chunks = dim / 8;
  float v[kMaxChunks][8];
  float ss = 0.f;
#pragma unroll
  for (int k = 0; k < kMaxChunks; ++k) {
    const int c = threadIdx.x + k * kNormThreads;
    if (c >= chunks) break;
    float4* xp = reinterpret_cast<float4*>(xr + c * 8);
    const float4 a = xp[0], b = xp[1];
    v[k][0] = a.x; v[k][1] = a.y; v[k][2] = a.z; v[k][3] = a.w;
    v[k][4] = b.x; v[k][5] = b.y; v[k][6] = b.z; v[k][7] = b.w;
    if (dr) {
      const uint4 d4 = *reinterpret_cast<const uint4*>(dr + c * 8);
      const __nv_bfloat162* d = reinterpret_cast<const __nv_bfloat162*>(&d4);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float2 f = __bfloat1622float2(d[j]);
        v[k][2 * j] += f.x;
        v[k][2 * j + 1] += f.y;
      }
      if (write_back) {
        xp[0] = make_float4(v[k][0], v[k][1], v[k][2], v[k][3]);
        xp[1] = make_float4(v[k][4], v[k][5], v[k][6], v[k][7]);
      }
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) ss += v[k][j] * v[k][j];
  }
  const float inv = rsqrtf(block_sum(ss, red) / dim + eps);
  bf16* o = out + static_cast<int64_t>(r) * dim;
#pragma unroll
  for (int k = 0; k < kMaxChunks; ++k) {
    const int c = threadIdx.x + k * kNormThreads;
    if (c >= chunks) break;
    const float4 wa = reinterpret_cast<const float4*>(w + c * 8)[0], wb = reinterpret_cast<const float4*>(w + c * 8)[1];
    const float wv[8] = {wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w};
    uint4 o4;
    __nv_bfloat162* op = reinterpret_cast<__nv_bfloat162*>(&o4);
#pragma unroll
    for (int j = 0; j < 4; ++j)
      op[j] = __floats2bfloat162_rn(v[k][2 * j] * inv * wv[2 * j], v[k][2 * j + 1] * inv * wv[2 * j + 1]);
    *reinterpret_cast<uint4*>(o + c * 8) = o4;
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
  if (dim % 8 == 0 && dim <= 8 * kNormThreads * kMaxChunks)
    add_rmsnorm_vec8_kernel<<<n_rows, kNormThreads, 0, s>>>(x, delta, w, out, rows, dim, eps, write_back);
  else
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
