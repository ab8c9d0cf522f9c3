// The deterministic mode's one-row GEMVs (kernels.h, ordered_gemv*): y[n] = sum_k x[k] * w[n, k] with the sums
// of ordered_gemm (gemm_ordered.cu) bit for bit, streamed at the weights' rate, and with the kernel before the
// GEMM (add + RMSNorm, SwiGLU) made by each block as the default mode's fused GEMVs do (gemv.cu, row_ops.cuh).
//
// Why a kernel of its own. ordered_gemm's sum for one output is a chain: k from 0 to K in steps of 16, one
// mma.sync.m16n8k16 per step into one f32 accumulator, with fixed fragment slots (lane (g, t) holds k = 2t, 2t+1,
// 2t+8, 2t+9 of the step). cuBLASLt's non-split-K algorithms give the same bits (docs/cuda-notes.md, v15), but at
// M = 1 they leave the RMSNorm and the SwiGLU as launches of their own, which cost the deterministic mode ~0.5 ms
// of a 4.2 ms 7B step on the H200. Here each warp runs the whole chain for 8 weight rows (the mma's n), with the
// same fragments in the same slots as ordered_gemm: x is A (row 0; rows 1..15 zero, as in ordered_gemm at
// M = 1), the weights are B. So a row's result is ordered_gemm's, and with it the bits of every other M.
//
// The stream. A warp owns groups of 8 rows (g, g + W, g + 2W, ... for W warps in the grid, W chosen so that every
// warp has the same number of groups or one fewer) and walks (group, 64-k stage) items. Each item is 8 rows x
// 128 bytes of weights, copied with cp.async (two 16-byte pieces per lane) into the warp's own ring of kStages
// buffers in shared memory, XOR-swizzled so that ldmatrix reads them without bank conflicts; ldmatrix.x4 then
// hands every lane exactly ordered_gemm's B fragments (row g, k = 2t, 2t+1 of each 8-k piece). The first
// kStages - 1 items are in flight before pdl_wait() (weights are constant), the rest kStages - 1 ahead of the
// mma. x sits in shared memory as bf16 (made after pdl_wait()).
#include <cuda_bf16.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>

#include "backend/cuda/cp_async.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/l2_prefetch.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/row_ops.cuh"
#include "backend/cuda/vec8.cuh"

namespace engine::cuda {
namespace {

constexpr int kMinK = 64;  // k per 16-byte piece of each of the 8 rows, times 8 lanes
enum class OrderedIn { kPlain, kSwiglu, kNorm };

struct OrderedArgs {
  const bf16* w = nullptr;
  void* y = nullptr;
  int N = 0, K = 0, warps_total = 0;
  const bf16* x = nullptr;        // kPlain: [K]
  const bf16* gu = nullptr;       // kSwiglu: [2K], gate then up
  const float* x_in = nullptr;    // kNorm: residual row [K]
  const float* delta = nullptr;   // kNorm: added to it, or null
  const float* norm_w = nullptr;  // kNorm: [K]
  float* x_out = nullptr;         // kNorm: x_in + delta, written by block 0
  float eps = 0.f;
  int l2_ahead = 0;               // bytes per block prefetched into L2 before the wait (set_gemv_l2_ahead)
};

__device__ __forceinline__ void ldmatrix_x4(const void* smem, uint32_t (&r)[4]) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

__device__ __forceinline__ void mma_bf16(float (&d)[4], uint32_t a0, uint32_t a2, uint32_t b0, uint32_t b1) {
  // A rows 8..15 (a1, a3) are zero: x is one row.
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(0u), "r"(a2), "r"(0u), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void store_out(float* y, float v) { *y = v; }
__device__ __forceinline__ void store_out(bf16* y, float v) { *y = __float2bfloat16_rn(v); }

// Dynamic shared memory: warps x kStages buffers of kStageBytes (8 rows x kStageK values), then x (K bf16).
// Row r's 16-byte piece c of a buffer sits at r * kRowBytes + 16 * (c ^ (r & 7)) (c < kStageK / 8): the 8 rows
// an ldmatrix reads at one c land in 8 different bank groups.
template <OrderedIn In, int kStageK, int kStages, typename OutT>
__global__ void __launch_bounds__(256) ordered_gemv_kernel(const OrderedArgs a) {
  constexpr int kRowBytes = kStageK * 2, kStageBytes = 8 * kRowBytes, kPieces = kStageBytes / 16;
  extern __shared__ uint4 smem[];
  const int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  char* ring = reinterpret_cast<char*>(smem) + size_t(warp) * kStages * kStageBytes;
  bf16* xs = reinterpret_cast<bf16*>(reinterpret_cast<char*>(smem) + size_t(warps) * kStages * kStageBytes);
  __shared__ float red[8];
  const int K = a.K, KS = K / kStageK, G = a.N / 8, W = a.warps_total;
  const int wg = blockIdx.x * warps + warp;
  const int groups = wg < W && wg < G ? (G - wg + W - 1) / W : 0;
  const int items = groups * KS;
  pdl_launch_dependents();

  const auto issue = [&](int i) {
    if (i < items) {
      const int gi = wg + (i / KS) * W, ks = i % KS;
      char* buf = ring + (i % kStages) * kStageBytes;
#pragma unroll
      for (int p = 0; p < kPieces / 32; ++p) {
        const int q = lane + 32 * p, r = q / (kStageK / 8), c = q % (kStageK / 8);
        cp_async16(buf + r * kRowBytes + ((c ^ r) << 4), a.w + size_t(gi * 8 + r) * K + ks * kStageK + c * 8);
      }
    }
    cp_async_commit();  // an empty group past the end keeps the count of groups in flight uniform
  };
#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) issue(i);
  // set_gemv_l2_ahead: the start of the warp's first group of 8 rows (contiguous) into L2, its share of the
  // block's bytes, before the wait.
  if (groups > 0 && a.l2_ahead > 0) {
    const size_t share = static_cast<size_t>(a.l2_ahead) / warps, rows = size_t(8) * K * sizeof(bf16);
    l2_prefetch_warp(a.w + static_cast<size_t>(wg) * 8 * K, share < rows ? share : rows);
  }
  pdl_wait();

  if constexpr (In == OrderedIn::kPlain) {
    for (int c = threadIdx.x; c < K / 8; c += blockDim.x)
      reinterpret_cast<uint4*>(xs)[c] = reinterpret_cast<const uint4*>(a.x)[c];
  } else if constexpr (In == OrderedIn::kSwiglu) {
    swiglu_row(a.gu, xs, K);
  } else {
    // blockDim.x == kNormThreads: the same threads, chunks and block sum as add_rmsnorm_vec8_kernel.
    add_rmsnorm_row(a.x_in, a.delta, blockIdx.x == 0 ? a.x_out : nullptr, a.norm_w, a.eps, xs, K, red);
  }
  __syncthreads();

  const int t = lane & 3;
  const uint32_t* x32 = reinterpret_cast<const uint32_t*>(xs);
  OutT* y = static_cast<OutT*>(a.y);
  float d[4] = {0.f, 0.f, 0.f, 0.f};
  for (int i = 0; i < items; ++i) {
    cp_async_wait<kStages - 2>();
    __syncwarp();  // item i is in every lane's view; every lane is done with item i - 1's buffer
    issue(i + kStages - 1);
    const int ks = i % KS;
    const char* buf = ring + (i % kStages) * kStageBytes;
#pragma unroll
    for (int h = 0; h < kStageK / 32; ++h) {
      // Matrix j of the x4 is the 8-k piece h * 4 + j of the stage; lane l gives the address of its row l % 8.
      uint32_t b[4];
      const int r = lane & 7, c = h * 4 + (lane >> 3);
      ldmatrix_x4(buf + r * kRowBytes + ((c ^ r) << 4), b);
#pragma unroll
      for (int s = 0; s < 2; ++s) {
        const int k0 = ks * kStageK + h * 32 + s * 16;
        const uint32_t a0 = lane < 4 ? x32[(k0 + 2 * t) / 2] : 0u;
        const uint32_t a2 = lane < 4 ? x32[(k0 + 2 * t + 8) / 2] : 0u;
        mma_bf16(d, a0, a2, b[2 * s], b[2 * s + 1]);
      }
    }
    if (ks == KS - 1) {
      // Row 0 of the tile: d[0], d[1] at columns 2t, 2t + 1 in lanes 0..3.
      if (lane < 4) {
        const int n = (wg + (i / KS) * W) * 8 + 2 * t;
        store_out(y + n, d[0]);
        store_out(y + n + 1, d[1]);
      }
      d[0] = d[1] = d[2] = d[3] = 0.f;
    }
  }
  cp_async_wait<0>();
}

// The shapes of the stream (v16 measured them): k per item and items in flight, for blocks of 4 warps (the
// plain and SwiGLU inputs) and of kNormThreads / 32 = 8 (the norm needs that many threads), at most ~200 KB of
// ring per block.
struct StreamShape {
  int stage_k, stages4, stages8;
};
constexpr StreamShape kShapes[] = {{64, 16, 8}, {128, 12, 6}, {256, 6, 3}, {256, 8, 4}, {512, 4, 3}, {512, 6, 3}};
constexpr int kNumShapes = sizeof(kShapes) / sizeof(kShapes[0]);
static_assert(kNumShapes == kOrderedGemvShapes);
std::atomic<int> g_shape{4};

template <OrderedIn In>
constexpr int threads_for() {
  return In == OrderedIn::kNorm ? kNormThreads : 128;
}

template <OrderedIn In, int kStageK, int kStages, typename OutT>
void launch_cfg(OrderedArgs a, cudaStream_t s) {
  constexpr int threads = threads_for<In>(), warps = threads / 32;
  auto* kernel = ordered_gemv_kernel<In, kStageK, kStages, OutT>;
  const size_t smem = size_t(warps) * kStages * 8 * kStageK * 2 + size_t(a.K) * sizeof(bf16);
  if (smem > 48 * 1024) {
    // Once per instantiation: the most a block may take, less the kernel's static part (graph capture allows
    // it; no stream work).
    static const bool set = [&] {
      cudaFuncAttributes fa{};
      LLM_CUDA_CHECK(cudaFuncGetAttributes(&fa, kernel));
      LLM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          device_smem_optin() - static_cast<int>(fa.sharedSizeBytes)));
      return true;
    }();
    (void)set;
  }
  int per_sm = 0;
  LLM_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem));
  if (per_sm < 1) throw std::invalid_argument("ordered_gemv: K = " + std::to_string(a.K) + " does not fit an SM");
  // Every warp takes `per` groups or one fewer: W warps for G groups.
  const int G = a.N / 8, capacity = per_sm * device_sm_count() * warps;
  const int per = (G + capacity - 1) / capacity;
  a.warps_total = (G + per - 1) / per;
  a.l2_ahead = gemv_l2_ahead();
  const int blocks = (a.warps_total + warps - 1) / warps;
  launch_pdl(kernel, blocks, threads, smem, s, a);
}

template <OrderedIn In, int I, typename OutT>
void launch_shape(const OrderedArgs& a, cudaStream_t s) {
  constexpr StreamShape sh = kShapes[I];
  constexpr int stages = threads_for<In>() == 128 ? sh.stages4 : sh.stages8;
  launch_cfg<In, sh.stage_k, stages, OutT>(a, s);
}

template <OrderedIn In, typename OutT>
void launch_as(const OrderedArgs& a, cudaStream_t s) {
  // K % stage_k != 0: the longest stage that divides K (every shape has a 64-k one).
  int i = g_shape.load(std::memory_order_relaxed);
  while (a.K % kShapes[i].stage_k != 0) --i;  // shapes 0..5 have non-decreasing stage_k
  switch (i) {
    case 0: launch_shape<In, 0, OutT>(a, s); break;
    case 1: launch_shape<In, 1, OutT>(a, s); break;
    case 2: launch_shape<In, 2, OutT>(a, s); break;
    case 3: launch_shape<In, 3, OutT>(a, s); break;
    case 4: launch_shape<In, 4, OutT>(a, s); break;
    default: launch_shape<In, 5, OutT>(a, s); break;
  }
}

template <OrderedIn In>
void launch(const OrderedArgs& a, bool y_f32, cudaStream_t s) {
  if (y_f32) launch_as<In, float>(a, s);
  else launch_as<In, bf16>(a, s);
}

void check_shape(const char* what, int N, int K, bool norm) {
  if (!ordered_gemv_supported(N, K, norm))
    throw std::invalid_argument(std::string(what) + ": unsupported shape N = " + std::to_string(N) +
                                ", K = " + std::to_string(K) + " (needs N % 8 == 0, K % 64 == 0" +
                                (norm ? ", K <= 8192)" : ")"));
}

}  // namespace

void set_ordered_gemv_shape(int i) { g_shape.store(std::clamp(i, 0, kNumShapes - 1), std::memory_order_relaxed); }

bool ordered_gemv_supported(int N, int K, bool norm) {
  if (N < 8 || N % 8 != 0 || K < kMinK || K % kMinK != 0) return false;
  if (norm && K > 8 * kNormThreads * kNormMaxChunks) return false;
  return true;
}

void ordered_gemv(const bf16* x, const bf16* w, void* y, bool y_f32, int N, int K, cudaStream_t s) {
  check_shape("ordered_gemv", N, K, false);
  OrderedArgs a;
  a.w = w;
  a.y = y;
  a.N = N;
  a.K = K;
  a.x = x;
  launch<OrderedIn::kPlain>(a, y_f32, s);
}

void ordered_gemv_swiglu(const bf16* gu, const bf16* w, void* y, bool y_f32, int N, int K, cudaStream_t s) {
  check_shape("ordered_gemv_swiglu", N, K, false);
  OrderedArgs a;
  a.w = w;
  a.y = y;
  a.N = N;
  a.K = K;
  a.gu = gu;
  launch<OrderedIn::kSwiglu>(a, y_f32, s);
}

void ordered_gemv_rmsnorm(const float* x_in, const float* delta, const float* norm_w, float eps, float* x_out,
                          const bf16* w, void* y, bool y_f32, int N, int K, cudaStream_t s) {
  check_shape("ordered_gemv_rmsnorm", N, K, true);
  OrderedArgs a;
  a.w = w;
  a.y = y;
  a.N = N;
  a.K = K;
  a.x_in = x_in;
  a.delta = delta;
  a.norm_w = norm_w;
  a.x_out = x_out;
  a.eps = eps;
  launch<OrderedIn::kNorm>(a, y_f32, s);
}

}  // namespace engine::cuda
