// Matrix-vector products for decode steps of a few tokens: y[m, n] = sum_k x[m, k] * w[n, k] for M <= 4.
// At such M a GEMM is a pure stream over the weights; one warp per weight row with 16-byte loads, four
// in flight per lane, keeps more bytes moving than the general GEMM kernels do at M = 1 (measured: 5.59 vs
// 5.87 ms per 7B decode step on an H100). Every row of x is re-read per weight chunk, so at M = 4 it loses
// to cuBLAS (8.46 vs 5.96 ms); the backend uses it for M = 1 only. Since v11 (docs/cuda-notes.md) the backend's
// M = 1 GEMVs run the unit-layout kernels below instead (gemv_units, and the fused gemv_swiglu / gemv_rmsnorm);
// this one stays for LLM_CUDA_GEMV_UNITS=0 and for M = 2..4.
#include <cuda_bf16.h>

#include <stdexcept>

#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/row_ops.cuh"
#include "backend/cuda/vec8.cuh"

namespace engine::cuda {
namespace {

constexpr int kWarps = 8;     // rows per block
constexpr int kUnroll = 4;    // 16-byte weight loads in flight per lane

__device__ __forceinline__ void store(float* y, float v) { *y = v; }
__device__ __forceinline__ void store(bf16* y, float v) { *y = __float2bfloat16(v); }

template <int M, typename OutT>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(const bf16* __restrict__ x, const bf16* __restrict__ w,
                                                           OutT* __restrict__ y, int N, int K) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n = blockIdx.x * kWarps + warp;
  pdl_launch_dependents();
  if (n >= N) {
    pdl_wait();
    return;
  }
  const bf16* wr = w + static_cast<int64_t>(n) * K;
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.f;
  constexpr int kStep = 32 * 8;  // elements per warp-wide 16-byte load
  constexpr int kStride = kStep * kUnroll;
  // Software-pipelined: the next kUnroll weight loads are in flight while this group is multiplied. The first
  // group is fetched before pdl_wait(): weights are constant, so under PDL those loads overlap the previous
  // kernel's tail; x (its output) is read only after the wait.
  uint4 wv[kUnroll];
  const auto fetch = [&](int k0) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int k = k0 + u * kStep;
      wv[u] = k < K ? *reinterpret_cast<const uint4*>(wr + k) : make_uint4(0, 0, 0, 0);
    }
  };
  fetch(lane * 8);
  pdl_wait();
  for (int k0 = lane * 8; k0 < K; k0 += kStride) {
    uint4 cur[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) cur[u] = wv[u];
    if (k0 + kStride < K) fetch(k0 + kStride);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int k = k0 + u * kStep;
      if (k >= K) break;
      float wf[8];
      bf16x8_to_f32(cur[u], wf);
#pragma unroll
      for (int m = 0; m < M; ++m) {
        float xf[8];
        bf16x8_to_f32(*reinterpret_cast<const uint4*>(x + static_cast<int64_t>(m) * K + k), xf);
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[m] = fmaf(wf[j], xf[j], acc[m]);
      }
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float v = acc[m];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) store(y + static_cast<int64_t>(m) * N + n, v);
  }
}

template <int M>
void launch(const bf16* x, const bf16* w, void* y, bool y_f32, int N, int K, cudaStream_t s) {
  const int blocks = (N + kWarps - 1) / kWarps;
  if (y_f32) launch_pdl(gemv_kernel<M, float>, blocks, kWarps * 32, 0, s, x, w, static_cast<float*>(y), N, K);
  else launch_pdl(gemv_kernel<M, bf16>, blocks, kWarps * 32, 0, s, x, w, static_cast<bf16*>(y), N, K);
}


// ---------------------------------------------------------------- the fused GEMVs (M = 1)
// y[n] = sum_k x[k] * w[n, k] where x is not read from memory but made by each block from what the kernel
// before the GEMV would have read: x = silu(gate) * up (the SwiGLU before the down projection) or
// x = RMSNorm(residual + delta) (the add + RMSNorm before QKV and gate/up). x goes to shared memory as bf16,
// rounded where the standalone kernel rounds its output (row_ops.cuh holds the one copy of that arithmetic).
//
// One block of 32 warps per SM (grid = the SM count), so x is made 132 times per launch rather than once per
// 8 rows. A block owns a contiguous range of rows; a row is cut into units of kUnroll 16-byte loads per lane
// (1024 values), and the block's units are dealt to its warps round-robin, so warps differ by at most one
// unit of work whatever N is (whole rows per warp would leave up to ~15 % of the warps idle at the end). Each
// unit's sum goes to shared memory; after a barrier each row adds its units in order (deterministic).
constexpr int kFThreads = 1024;
constexpr int kFWarps = kFThreads / 32;
constexpr int kUnit = kUnroll * 32 * 8;  // values of a row per unit

enum class FusedIn { kPlain, kSwiglu, kNorm };

struct FusedArgs {
  const bf16* w = nullptr;
  void* y = nullptr;
  int N = 0, K = 0, rows_per_block = 0;
  const bf16* x = nullptr;        // kPlain: [K], copied to shared memory
  const bf16* gu = nullptr;       // kSwiglu: [2K], gate then up
  const float* x_in = nullptr;    // kNorm: residual row [K]
  const float* delta = nullptr;   // kNorm: added to it, or null
  const float* norm_w = nullptr;  // kNorm: [K]
  float* x_out = nullptr;         // kNorm: x_in + delta, written by block 0
  float eps = 0.f;
};

__host__ __device__ inline int fused_units(int K) { return (K + kUnit - 1) / kUnit; }

size_t fused_smem(int K, int rows_per_block) {
  return static_cast<size_t>(K) * sizeof(bf16) + static_cast<size_t>(rows_per_block) * fused_units(K) * 4;
}

template <FusedIn In, typename OutT>
__global__ void __launch_bounds__(kFThreads, 1) gemv_fused_kernel(const FusedArgs a) {
  extern __shared__ uint4 smem[];
  bf16* xs = reinterpret_cast<bf16*>(smem);
  float* part = reinterpret_cast<float*>(xs + a.K);  // K % 8 == 0: 16-byte aligned
  __shared__ float red[kFWarps];
  const int K = a.K, S = fused_units(K);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int r0 = blockIdx.x * a.rows_per_block;
  const int R = max(0, min(a.rows_per_block, a.N - r0));
  const int units = R * S;
  pdl_launch_dependents();

  uint4 wv[kUnroll];
  const auto fetch = [&](int u) {
    const bf16* wr = a.w + static_cast<int64_t>(r0 + u / S) * K;
    const int k0 = (u % S) * kUnit + lane * 8;
#pragma unroll
    for (int q = 0; q < kUnroll; ++q) {
      const int k = k0 + q * 256;
      wv[q] = k < K ? *reinterpret_cast<const uint4*>(wr + k) : make_uint4(0, 0, 0, 0);
    }
  };
  // Weights are constant: the first unit's loads are in flight before the wait, as in the plain GEMV.
  if (warp < units) fetch(warp);
  pdl_wait();

  if constexpr (In == FusedIn::kPlain) {
    for (int c = threadIdx.x; c < K / 8; c += kFThreads)
      *reinterpret_cast<uint4*>(xs + c * 8) = *reinterpret_cast<const uint4*>(a.x + c * 8);
  } else if constexpr (In == FusedIn::kSwiglu) {
    for (int c = threadIdx.x; c < K / 8; c += kFThreads) {
      float g[8], u[8], o[8];
      load8(a.gu + c * 8, g);
      load8(a.gu + K + c * 8, u);
      swiglu8(g, u, o);
      store8(xs + c * 8, o);
    }
  } else {
    float v[kNormMaxChunks][8];
    const int chunks = K / 8;
    const float ss =
        rms_pass1(a.x_in, a.delta, blockIdx.x == 0 ? a.x_out : nullptr, chunks, threadIdx.x, v);
    const float inv = rsqrtf(block_sum(ss, red) / K + a.eps);
    rms_pass2(v, a.norm_w, inv, xs, chunks, threadIdx.x);
  }
  __syncthreads();

  for (int u = warp; u < units; u += kFWarps) {
    uint4 cur[kUnroll];
#pragma unroll
    for (int q = 0; q < kUnroll; ++q) cur[q] = wv[q];
    if (u + kFWarps < units) fetch(u + kFWarps);
    const int k0 = (u % S) * kUnit + lane * 8;
    float acc = 0.f;
#pragma unroll
    for (int q = 0; q < kUnroll; ++q) {
      const int k = k0 + q * 256;
      if (k >= K) break;
      float wf[8], xf[8];
      bf16x8_to_f32(cur[q], wf);
      bf16x8_to_f32(*reinterpret_cast<const uint4*>(xs + k), xf);
#pragma unroll
      for (int j = 0; j < 8; ++j) acc = fmaf(wf[j], xf[j], acc);
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) part[u] = acc;
  }
  __syncthreads();
  OutT* y = static_cast<OutT*>(a.y);
  for (int r = threadIdx.x; r < R; r += kFThreads) {
    float s = 0.f;
    for (int q = 0; q < S; ++q) s += part[r * S + q];
    store(y + r0 + r, s);
  }
}

int sm_count() {
  static const int n = [] {
    int dev = 0, v = 0;
    LLM_CUDA_CHECK(cudaGetDevice(&dev));
    LLM_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev));
    return v;
  }();
  return n;
}

int fused_rows_per_block(int N) { return (N + sm_count() - 1) / sm_count(); }

template <FusedIn In>
void launch_fused(FusedArgs a, bool y_f32, cudaStream_t s) {
  a.rows_per_block = fused_rows_per_block(a.N);
  const size_t smem = fused_smem(a.K, a.rows_per_block);
  const int grid = (a.N + a.rows_per_block - 1) / a.rows_per_block;
  if (y_f32) launch_pdl(gemv_fused_kernel<In, float>, grid, kFThreads, smem, s, a);
  else launch_pdl(gemv_fused_kernel<In, bf16>, grid, kFThreads, smem, s, a);
}

}  // namespace

bool gemv_supported(int M, int K) { return M >= 1 && M <= kGemvMaxM && K % 8 == 0; }

void gemv(const bf16* x, const bf16* w, void* y, bool y_f32, int M, int N, int K, cudaStream_t s) {
  switch (M) {
    case 1: launch<1>(x, w, y, y_f32, N, K, s); break;
    case 2: launch<2>(x, w, y, y_f32, N, K, s); break;
    case 3: launch<3>(x, w, y, y_f32, N, K, s); break;
    case 4: launch<4>(x, w, y, y_f32, N, K, s); break;
    default: throw std::invalid_argument("gemv: M must be 1..4");
  }
}

bool gemv_fused_supported(int N, int K, bool norm) {
  if (N < 1 || K < 8 || K % 8 != 0) return false;
  if (norm && K > 8 * kNormThreads * kNormMaxChunks) return false;
  return fused_smem(K, fused_rows_per_block(N)) <= 48 * 1024;
}

void gemv_units(const bf16* x, const bf16* w, void* y, bool y_f32, int N, int K, cudaStream_t s) {
  if (!gemv_fused_supported(N, K, false)) throw std::invalid_argument("gemv_units: unsupported shape");
  FusedArgs a;
  a.w = w;
  a.y = y;
  a.N = N;
  a.K = K;
  a.x = x;
  launch_fused<FusedIn::kPlain>(a, y_f32, s);
}

void gemv_swiglu(const bf16* gu, const bf16* w, void* y, bool y_f32, int N, int K, cudaStream_t s) {
  if (!gemv_fused_supported(N, K, false)) throw std::invalid_argument("gemv_swiglu: unsupported shape");
  FusedArgs a;
  a.w = w;
  a.y = y;
  a.N = N;
  a.K = K;
  a.gu = gu;
  launch_fused<FusedIn::kSwiglu>(a, y_f32, s);
}

void gemv_rmsnorm(const float* x_in, const float* delta, const float* norm_w, float eps, float* x_out, const bf16* w,
                  void* y, bool y_f32, int N, int K, cudaStream_t s) {
  if (!gemv_fused_supported(N, K, true)) throw std::invalid_argument("gemv_rmsnorm: unsupported shape");
  FusedArgs a;
  a.w = w;
  a.y = y;
  a.N = N;
  a.K = K;
  a.x_in = x_in;
  a.delta = delta;
  a.norm_w = norm_w;
  a.x_out = x_out;
  a.eps = eps;
  launch_fused<FusedIn::kNorm>(a, y_f32, s);
}

}  // namespace engine::cuda
