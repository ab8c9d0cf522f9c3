// gemv_preload (kernels.h; docs/cuda-notes.md, v24): the one-row product y[n] = sum_k x[k] * w[n, k] of
// gemv_units (M = 1, x read from memory), in a block small enough to be resident beside the decode attention,
// that copies the first bytes of its weights into shared memory before its PDL wait.
//
// Why. At batch 1 the attention between the QKV and O GEMVs is a latency chain (~10 us a layer) that reads ~2 MB:
// the memory bus is idle while it runs, and the O GEMV, a block of 1,024 threads at 64 registers (the whole
// register file), cannot start an SM's share of its 33.5 MB until the attention's blocks there have left. This
// kernel's block is 512 threads (<= 64 registers: half the register file), so under PDL it is scheduled while the
// attention runs, and its one elected thread asks the bulk-copy unit for the first `preload` bytes of the block's
// rows (contiguous in memory; chunks of 16 KB, an mbarrier each). No registers are held for those bytes while
// they are in flight, and they are not in L2, where v18's prefetch of the same weights lost them.
//
// After the wait: x to shared memory (bf16, as gemv_units), then each warp computes its units from shared memory
// (the preloaded prefix of the block's units) while its loads of the rest, issued first, are in flight, then the
// rest as gemv_units does (kUnroll 16-byte loads a lane in flight). A unit is gemv_units' (a row's 1,024 values:
// kUnroll 16-byte slices a lane, one fmaf chain, the warp's shuffle sum), its sum goes to shared memory and a row
// adds its units in order, so y has gemv_units' bits at M = 1 whatever the preload and the block count.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/gemv_bulk.cuh"
#include "backend/cuda/gemv_unit.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/vec8.cuh"

namespace engine::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kUnroll = kUnitSlices;      // 16-byte slices a lane a unit, as gemv_units (gemv_unit.cuh)

struct PreloadArgs {
  const bf16* x = nullptr;  // [K]
  const bf16* w = nullptr;  // [N, K]
  void* y = nullptr;        // [N]
  int N = 0, K = 0, rows_per_block = 0;
  int preload = 0;          // bytes of a block's rows copied before the wait (a multiple of 16, <= kBulkMaxChunks chunks)
};

__device__ __forceinline__ void put(float* y, float v) { *y = v; }
__device__ __forceinline__ void put(bf16* y, float v) { *y = __float2bfloat16(v); }

template <typename OutT>
__global__ void __launch_bounds__(kThreads, 2) gemv_preload_kernel(const PreloadArgs a) {
  extern __shared__ __align__(128) uint8_t smem[];
  const int K = a.K, S = unit_count(K);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int r0 = blockIdx.x * a.rows_per_block;
  const int R = max(0, min(a.rows_per_block, a.N - r0));
  const int units = R * S;
  const uint8_t* wblock = reinterpret_cast<const uint8_t*>(a.w + static_cast<int64_t>(r0) * K);
  const BulkPrefix bp = bulk_prefix(a.preload, K, R);
  const int pre = bp.units;
  // Shared memory: gemv_bulk.cuh's layout for one row of x.
  bf16* xs = reinterpret_cast<bf16*>(smem + bulk_x_offset(a.preload));
  float* part = reinterpret_cast<float*>(smem + bulk_part_offset(a.preload, 1, K));
  uint64_t* bar = reinterpret_cast<uint64_t*>(smem + bulk_bar_offset(a.preload, 1, K, a.rows_per_block));
  pdl_launch_dependents();

  // Before the wait: the bulk copies of the prefix (weights are constant), and each warp's first unit past it
  // into registers.
  if (threadIdx.x == 0) bulk_issue(smem, wblock, bp, bar);
  uint4 wv[kUnroll];
  const auto fetch = [&](int u) { load_unit(wv, a.w + static_cast<int64_t>(r0 + u / S) * K, u % S, lane, K); };
  if (pre + warp < units) fetch(pre + warp);
  __syncthreads();  // the barriers' initialisation before anyone waits on them
  pdl_wait();

  for (int c = threadIdx.x; c < K / 8; c += kThreads)
    *reinterpret_cast<uint4*>(xs + c * 8) = *reinterpret_cast<const uint4*>(a.x + c * 8);
  __syncthreads();

  // The preloaded units, read from shared memory while the first global unit is in flight.
  bulk_units<true>(bp, bar, reinterpret_cast<const bf16*>(smem), xs, part, S, K, warp, kWarps, lane);
  // The rest, kUnroll slices a lane in flight ahead.
  for (int u = pre + warp; u < units; u += kWarps) {
    uint4 cur[kUnroll];
#pragma unroll
    for (int q = 0; q < kUnroll; ++q) cur[q] = wv[q];
    if (u + kWarps < units) fetch(u + kWarps);
    float acc[1];
    unit_dot<1, true>(cur, xs, u % S, lane, K, acc);
    if (lane == 0) part[u] = acc[0];
  }
  if (threadIdx.x == 0) bulk_drain(bar, bp);
  __syncthreads();
  OutT* y = static_cast<OutT*>(a.y);
  for (int r = threadIdx.x; r < R; r += kThreads) {
    float s = 0.f;
    for (int q = 0; q < S; ++q) s += part[r * S + q];
    put(y + r0 + r, s);
  }
}

// The bytes a block copies (clamp_bulk_bytes for the block's rows).
int clamp_preload(int preload, int N, int K) { return clamp_bulk_bytes(preload, K, unit_rows_per_block(N)); }

template <typename OutT>
void launch(const PreloadArgs& a, size_t smem, cudaStream_t s) {
  // Once per instantiation (graph capture allows it: no stream work): the opt-in up to the device's limit, and
  // the largest shared-memory carveout, so an SM running the attention has room for this block beside it.
  static const bool set = [] {
    LLM_CUDA_CHECK(cudaFuncSetAttribute(gemv_preload_kernel<OutT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        device_smem_optin()));
    LLM_CUDA_CHECK(cudaFuncSetAttribute(gemv_preload_kernel<OutT>,
                                        cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    return true;
  }();
  (void)set;
  const int grid = (a.N + a.rows_per_block - 1) / a.rows_per_block;
  launch_pdl(gemv_preload_kernel<OutT>, grid, kThreads, smem, s, a);
}

}  // namespace

bool gemv_preload_supported(int N, int K, int preload) {
  if (N < 1 || K < 8 || K % 8 != 0 || preload < 0) return false;
  if (!device_is_sm90()) return false;
  return bulk_smem(clamp_preload(preload, N, K), K, unit_rows_per_block(N)) <=
         static_cast<size_t>(device_smem_optin());
}

void gemv_preload(const bf16* x, const bf16* w, void* y, bool y_f32, int N, int K, int preload, cudaStream_t s) {
  if (!gemv_preload_supported(N, K, preload))
    throw std::invalid_argument("gemv_preload: unsupported N " + std::to_string(N) + " K " + std::to_string(K) +
                                " preload " + std::to_string(preload) +
                                " (needs an sm_90 device, K % 8 == 0 and the preload, x and the row sums within a "
                                "block's shared memory)");
  PreloadArgs a;
  a.x = x;
  a.w = w;
  a.y = y;
  a.N = N;
  a.K = K;
  a.rows_per_block = unit_rows_per_block(N);
  a.preload = clamp_preload(preload, N, K);
  const size_t smem = bulk_smem(a.preload, K, a.rows_per_block);
  if (y_f32) launch<float>(a, smem, s);
  else launch<bf16>(a, smem, s);
}

}  // namespace engine::cuda
