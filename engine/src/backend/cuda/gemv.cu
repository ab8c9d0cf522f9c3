// Matrix-vector products for decode steps of a few tokens: y[m, n] = sum_k x[m, k] * w[n, k] for M <= 8.
// At such M a GEMM is a pure stream over the weights; one warp per weight row with 16-byte loads, four
// in flight per lane, keeps more bytes moving than the general GEMM kernels do at M = 1 (measured: 5.59 vs
// 5.87 ms per 7B decode step on an H100). Every row of x is re-read per weight chunk, so at M = 4 it loses
// to cuBLAS (8.46 vs 5.96 ms); the backend uses it for M = 1 only. Since v11 (docs/cuda-notes.md) the backend's
// M = 1 GEMVs run the unit-layout kernels below instead (gemv_units, and the fused gemv_swiglu / gemv_rmsnorm),
// and since v12 gemv_units takes M = 2..kUnitsMaxM too (x rows in shared memory, each weight element loaded once
// and multiplied by every row; the backend takes it up to M = 2, where it beats cuBLAS); gemv_kernel stays for
// LLM_CUDA_GEMV_UNITS=0.
#include <cuda_bf16.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>

#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/gemv_bulk.cuh"
#include "backend/cuda/gemv_unit.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/l2_prefetch.cuh"
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


// ---------------------------------------------------------------- the unit-layout GEMVs
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
//
// The plain product (kPlain) also takes M = 2..kUnitsMaxM rows of x (v12): all M rows sit in shared memory
// (M * K bf16), each weight element is loaded and converted once and multiplied by the M rows, with one
// accumulator per row; a unit's M sums go to shared memory side by side. Row m's result is the M = 1 sum of
// that row (the same units, the same fmaf order), so it does not depend on M.
constexpr int kFThreads = 1024;
constexpr int kFWarps = kFThreads / 32;
static_assert(kUnroll == kUnitSlices);

enum class FusedIn { kPlain, kSwiglu, kNorm };

struct FusedArgs {
  const bf16* w = nullptr;
  void* y = nullptr;
  int N = 0, K = 0, rows_per_block = 0;
  const bf16* x = nullptr;        // kPlain: [M, K], copied to shared memory
  const bf16* gu = nullptr;       // kSwiglu: [2K], gate then up
  const float* x_in = nullptr;    // kNorm: residual row [K]
  const float* delta = nullptr;   // kNorm: added to it, or null
  const float* norm_w = nullptr;  // kNorm: [K]
  float* x_out = nullptr;         // kNorm: x_in + delta, written by block 0
  float eps = 0.f;
  int l2_ahead = 0;               // bytes of its rows each block prefetches into L2 before its wait (set_gemv_l2_ahead)
  int bulk = 0;                   // Bulk: bytes of its rows each block copies into shared memory before its wait
};

// Shared memory: gemv_bulk.cuh's layout, the prefix (and its barriers) only in the Bulk form.
size_t fused_smem(int M, int K, int rows_per_block) {
  return bulk_part_offset(0, M, K) + static_cast<size_t>(rows_per_block) * unit_count(K) * M * 4;
}

template <FusedIn In, int M, typename OutT, bool IntCvt, bool Bulk>
__global__ void __launch_bounds__(kFThreads, 1) gemv_fused_kernel(const FusedArgs a) {
  static_assert(M == 1 || In == FusedIn::kPlain, "the fused inputs are made for one row");
  static_assert(M == 1 || !Bulk, "the bulk prefix is for one-row GEMVs");
  extern __shared__ __align__(128) uint8_t smem[];
  bf16* xs = reinterpret_cast<bf16*>(smem + bulk_x_offset(a.bulk));
  float* part = reinterpret_cast<float*>(smem + bulk_part_offset(a.bulk, M, a.K));
  __shared__ float red[kFWarps];
  const int K = a.K, S = unit_count(K);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int r0 = blockIdx.x * a.rows_per_block;
  const int R = max(0, min(a.rows_per_block, a.N - r0));
  const int units = R * S;
  pdl_launch_dependents();

  // Weights are constant: before the wait, the bulk prefix's copies (Bulk) and each warp's first unit past it
  // into registers, as in the plain GEMV; with l2_ahead the start of the block's rows (contiguous, walked in
  // order) is prefetched into L2.
  BulkPrefix pre;
  uint64_t* bar = reinterpret_cast<uint64_t*>(smem + bulk_bar_offset(a.bulk, M, K, a.rows_per_block));
  if constexpr (Bulk) {
    pre = bulk_prefix(a.bulk, K, R);
    if (threadIdx.x == 0)
      bulk_issue(smem, reinterpret_cast<const uint8_t*>(a.w + static_cast<int64_t>(r0) * K), pre, bar);
  }
  uint4 wv[kUnroll];
  const auto fetch = [&](int u) { load_unit(wv, a.w + static_cast<int64_t>(r0 + u / S) * K, u % S, lane, K); };
  if (pre.units + warp < units) fetch(pre.units + warp);
  if (a.l2_ahead > 0 && R > 0)
    l2_prefetch_block(a.w + static_cast<int64_t>(r0) * K,
                      min(static_cast<size_t>(R) * K * sizeof(bf16), static_cast<size_t>(a.l2_ahead)));
  if constexpr (Bulk) __syncthreads();  // the barriers' initialisation before anyone waits on them
  pdl_wait();

  if constexpr (In == FusedIn::kPlain) {
    for (int c = threadIdx.x; c < M * K / 8; c += kFThreads)
      *reinterpret_cast<uint4*>(xs + c * 8) = *reinterpret_cast<const uint4*>(a.x + c * 8);
  } else if constexpr (In == FusedIn::kSwiglu) {
    swiglu_row(a.gu, xs, K);
  } else {
    add_rmsnorm_row(a.x_in, a.delta, blockIdx.x == 0 ? a.x_out : nullptr, a.norm_w, a.eps, xs, K, red);
  }
  __syncthreads();

  // The preloaded units, from shared memory, while each warp's first global unit is in flight.
  if constexpr (Bulk)
    bulk_units<IntCvt>(pre, bar, reinterpret_cast<const bf16*>(smem), xs, part, S, K, warp, kFWarps, lane);
  for (int u = pre.units + warp; u < units; u += kFWarps) {
    uint4 cur[kUnroll];
#pragma unroll
    for (int q = 0; q < kUnroll; ++q) cur[q] = wv[q];
    if (u + kFWarps < units) fetch(u + kFWarps);
    float acc[M];
    unit_dot<M, IntCvt>(cur, xs, u % S, lane, K, acc);
    if (lane == 0) {
#pragma unroll
      for (int m = 0; m < M; ++m) part[u * M + m] = acc[m];
    }
  }
  if constexpr (Bulk) {
    if (threadIdx.x == 0) bulk_drain(bar, pre);
  }
  __syncthreads();
  OutT* y = static_cast<OutT*>(a.y);
  for (int i = threadIdx.x; i < R * M; i += kFThreads) {
    const int r = i / M, m = i % M;
    float s = 0.f;
    for (int q = 0; q < S; ++q) s += part[(r * S + q) * M + m];
    store(y + static_cast<int64_t>(m) * a.N + r0 + r, s);
  }
}

// Shared memory a block of M > 1 rows may take (the opt-in limit, less the static part); M = 1 keeps the
// default 48 KB, as before v12.
size_t units_smem_limit() { return static_cast<size_t>(device_smem_optin()) - kFWarps * sizeof(float); }

template <FusedIn In, int M, typename OutT, bool IntCvt>
void launch_fused_cvt(const FusedArgs& a, size_t smem, int grid, cudaStream_t s) {
  if constexpr (M == 1) {
    if (a.bulk > 0) {
      // Once per instantiation (graph capture allows it; no stream work): the opt-in limit, and the largest
      // shared-memory carveout, as gemv_preload.
      static const bool set = [] {
        LLM_CUDA_CHECK(cudaFuncSetAttribute(gemv_fused_kernel<In, M, OutT, IntCvt, true>,
                                            cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(units_smem_limit())));
        LLM_CUDA_CHECK(cudaFuncSetAttribute(gemv_fused_kernel<In, M, OutT, IntCvt, true>,
                                            cudaFuncAttributePreferredSharedMemoryCarveout, 100));
        return true;
      }();
      (void)set;
      launch_pdl(gemv_fused_kernel<In, M, OutT, IntCvt, true>, grid, kFThreads, smem, s, a);
      return;
    }
  }
  if (smem > 48 * 1024) {
    // Once per instantiation (graph capture allows it; no stream work).
    static const bool set = [] {
      LLM_CUDA_CHECK(cudaFuncSetAttribute(gemv_fused_kernel<In, M, OutT, IntCvt, false>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(units_smem_limit())));
      return true;
    }();
    (void)set;
  }
  launch_pdl(gemv_fused_kernel<In, M, OutT, IntCvt, false>, grid, kFThreads, smem, s, a);
}

std::atomic<bool> g_int_cvt{true};
std::atomic<int> g_l2_ahead{0};
std::atomic<int> g_bulk{0};

template <FusedIn In, int M, typename OutT>
void launch_fused_as(const FusedArgs& a, size_t smem, int grid, cudaStream_t s) {
  if (g_int_cvt.load(std::memory_order_relaxed)) launch_fused_cvt<In, M, OutT, true>(a, smem, grid, s);
  else launch_fused_cvt<In, M, OutT, false>(a, smem, grid, s);
}

// The bulk prefix a one-row block of R rows of K values takes for a request of `bytes`: at most kBulkMaxChunks
// chunks and the block's rows, within the opt-in limit beside x, the sums and the barriers, a multiple of 16;
// 0 off sm_90 (the bulk copies need it) or where not even 16 bytes fit.
int fused_bulk_bytes(int bytes, int K, int rows_per_block) {
  if (bytes <= 0 || !device_is_sm90()) return 0;
  const long long room = static_cast<long long>(units_smem_limit()) -
                         static_cast<long long>(bulk_smem(0, K, rows_per_block)) - 128;
  const long long b = std::min<long long>(clamp_bulk_bytes(bytes, K, rows_per_block), room) / 16 * 16;
  return b > 0 ? static_cast<int>(b) : 0;
}

template <FusedIn In, int M>
void launch_fused(FusedArgs a, bool y_f32, cudaStream_t s) {
  a.rows_per_block = unit_rows_per_block(a.N);
  a.l2_ahead = g_l2_ahead.load(std::memory_order_relaxed);
  a.bulk = M == 1 ? fused_bulk_bytes(g_bulk.load(std::memory_order_relaxed), a.K, a.rows_per_block) : 0;
  const size_t smem = a.bulk > 0 ? bulk_smem(a.bulk, a.K, a.rows_per_block) : fused_smem(M, a.K, a.rows_per_block);
  const int grid = (a.N + a.rows_per_block - 1) / a.rows_per_block;
  if (y_f32) launch_fused_as<In, M, float>(a, smem, grid, s);
  else launch_fused_as<In, M, bf16>(a, smem, grid, s);
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

void set_gemv_int_convert(bool on) { g_int_cvt.store(on, std::memory_order_relaxed); }

void set_gemv_l2_ahead(int bytes) { g_l2_ahead.store(bytes > 0 ? bytes : 0, std::memory_order_relaxed); }
int gemv_l2_ahead() { return g_l2_ahead.load(std::memory_order_relaxed); }

void set_gemv_bulk_prefix(int bytes) { g_bulk.store(bytes > 0 ? bytes : 0, std::memory_order_relaxed); }
int gemv_bulk_prefix() { return g_bulk.load(std::memory_order_relaxed); }

bool gemv_fused_supported(int N, int K, bool norm) {
  if (N < 1 || K < 8 || K % 8 != 0) return false;
  if (norm && K > 8 * kNormThreads * kNormMaxChunks) return false;
  return fused_smem(1, K, unit_rows_per_block(N)) <= 48 * 1024;
}

bool gemv_units_supported(int M, int N, int K) {
  if (M < 1 || M > kUnitsMaxM) return false;
  if (M == 1) return gemv_fused_supported(N, K, false);
  if (N < 1 || K < 8 || K % 8 != 0) return false;
  return fused_smem(M, K, unit_rows_per_block(N)) <= units_smem_limit();
}

void gemv_units(const bf16* x, const bf16* w, void* y, bool y_f32, int M, int N, int K, cudaStream_t s) {
  if (!gemv_units_supported(M, N, K)) throw std::invalid_argument("gemv_units: unsupported shape");
  FusedArgs a;
  a.w = w;
  a.y = y;
  a.N = N;
  a.K = K;
  a.x = x;
  switch (M) {
    case 1: launch_fused<FusedIn::kPlain, 1>(a, y_f32, s); break;
    case 2: launch_fused<FusedIn::kPlain, 2>(a, y_f32, s); break;
    case 3: launch_fused<FusedIn::kPlain, 3>(a, y_f32, s); break;
    case 4: launch_fused<FusedIn::kPlain, 4>(a, y_f32, s); break;
    case 5: launch_fused<FusedIn::kPlain, 5>(a, y_f32, s); break;
    case 6: launch_fused<FusedIn::kPlain, 6>(a, y_f32, s); break;
    case 7: launch_fused<FusedIn::kPlain, 7>(a, y_f32, s); break;
    case 8: launch_fused<FusedIn::kPlain, 8>(a, y_f32, s); break;
    default: throw std::invalid_argument("gemv_units: M must be 1..8");
  }
}

void gemv_swiglu(const bf16* gu, const bf16* w, void* y, bool y_f32, int N, int K, cudaStream_t s) {
  if (!gemv_fused_supported(N, K, false)) throw std::invalid_argument("gemv_swiglu: unsupported shape");
  FusedArgs a;
  a.w = w;
  a.y = y;
  a.N = N;
  a.K = K;
  a.gu = gu;
  launch_fused<FusedIn::kSwiglu, 1>(a, y_f32, s);
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
  launch_fused<FusedIn::kNorm, 1>(a, y_f32, s);
}

}  // namespace engine::cuda
