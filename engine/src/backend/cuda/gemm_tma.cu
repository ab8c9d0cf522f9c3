// gemm_tma (gemm_tma.h): the TMA + wgmma stream for decode GEMMs of up to 64 rows.
//
// The work is units: (tile, chunk), a tile 64 weight rows (wgmma's m), a chunk 64 k (one 128-byte swizzle row).
// Units go tile-major; block b of G takes [b U / G, (b + 1) U / G), so each block streams the same number of
// weight bytes (+- one unit) whatever N is: no tail of blocks with a tile more than the others (the unit
// layout of gemv_units and gemv_mma, v11-v13). Within a block:
//   - one producer thread (warp 4) issues, per unit, a TMA load of the weight tile (64 rows x 64 k, 8 KB) and
//     one of x (NP rows x 64 k; rows past M and k past K arrive as zeros) into a ring of stages, each
//     with a "full" mbarrier (the bytes landed) and an "empty" one (the consumers are done with it). The
//     weights of the first stages are asked for before pdl_wait (they are not written by earlier kernels);
//     x only after it;
//   - one consumer warpgroup (warps 0-3) waits for a stage, runs four m64nNPk16 wgmmas on it (the weights as
//     A, x as B, both K-major, 128-byte swizzle) into fp32 registers (four independent sets, added when the
//     tile is done), keeps that group in flight while it issues the next stage's, and frees a stage once its
//     group is done. A block takes the (at most two) tiles it shares with its neighbours first, its whole
//     tiles after (UnitOrder). A tile it covered whole goes straight to y; its part of a shared tile goes to
//     the block's partial slot (0: the range's first tile, 1: its last), then a counter per tile says who came
//     last, and that block adds the tile's partials in block order and writes y (the counter back at zero for
//     the next call).
// Switches for measurements (gemm_tma.h): the first version's consumer (one set, a wait per stage), units in
// order, no L2 hint, no PDL. docs/cuda-notes.md v19 has what the first version measured.
// The cut depends on N, K and G only; a tile's sum over its blocks is in block order: the same bits every run.
#include "backend/cuda/gemm_tma.h"

#include <cuda.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/gemm_tma_order.cuh"
#include "backend/cuda/hopper.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/tensor_map.h"

namespace engine::cuda {
namespace {

using bf16 = __nv_bfloat16;
namespace hp = hopper;

constexpr int kRows = 64;    // weight rows a tile (wgmma m)
constexpr int kChunk = 64;   // k a unit: 128 bytes, the swizzle's row
constexpr int kConsumers = 128;
constexpr int kThreads = kConsumers + 32;

// Stages of the ring by default: 144-160 KB a block (16 x 9 KB at NP = 8, 16 x 10 KB, 12 x 12 KB, 10 x 16 KB at
// NP = 64). GemmTmaTuning::stages (2..kMaxStages) sets another count for measurements.
constexpr int kMaxStages = 16;
template <int NP>
constexpr int stages_of() {
  return NP <= 16 ? 16 : NP <= 32 ? 12 : 10;
}

// The block's shared memory for S stages: S weight tiles (8 KB each, 1,024-aligned: the swizzle's period), S x
// tiles (NP x 128 B, a multiple of 1,024), then the full and empty barriers and the finisher flag.
template <int NP>
struct TmaSmem {
  uint8_t* base;
  int S;
  __host__ __device__ static constexpr size_t w_bytes() { return kRows * kChunk * sizeof(bf16); }
  __host__ __device__ static constexpr size_t x_bytes() { return NP * kChunk * sizeof(bf16); }
  __host__ __device__ static size_t bytes(int S) { return S * (w_bytes() + x_bytes()) + 2 * kMaxStages * 8 + 16; }
  __device__ bf16* w(int s) const { return reinterpret_cast<bf16*>(base + s * w_bytes()); }
  __device__ bf16* x(int s) const { return reinterpret_cast<bf16*>(base + S * w_bytes() + s * x_bytes()); }
  __device__ uint64_t* full(int s) const { return reinterpret_cast<uint64_t*>(base + S * (w_bytes() + x_bytes())) + s; }
  __device__ uint64_t* empty(int s) const { return full(kMaxStages) + s; }
  __device__ int& last() const { return *reinterpret_cast<int*>(full(2 * kMaxStages)); }
};

// Set by the backend at construction (or a test or bench between calls), read on the host at each launch.
std::mutex g_tuning_mutex;
GemmTmaTuning g_tuning;

GemmTmaTuning tuning() {
  std::lock_guard<std::mutex> lock(g_tuning_mutex);
  return g_tuning;
}

struct TmaArgs {
  void* y = nullptr;
  float* partials = nullptr;
  unsigned* counters = nullptr;
  int M = 0, N = 0, K = 0;
  int chunks = 0;  // per tile: ceil(K / 64)
  long long units = 0;
  int stages = 0;          // the ring's stages
  int prefetch = 0;        // prefetch.tensormap both maps first
  unsigned long long* phases = nullptr;  // kTmaPhaseSlots timestamps a block (TmaScratch::record_phases)
  int evict_first = 1;     // the weights' loads carry the L2 evict-first hint
  int partials_first = 1;  // UnitOrder
};

__device__ __forceinline__ void put(float* y, float v) { *y = v; }
__device__ __forceinline__ void put(bf16* y, float v) { *y = __float2bfloat16(v); }

// The fragment's outputs into y (rows n0 + r of the weights are y's columns; x's rows are y's rows).
template <int NP, typename OutT>
__device__ __forceinline__ void store_tile(const float (&acc)[NP / 2], const TmaArgs& a, int n0, int tid) {
  OutT* y = static_cast<OutT*>(a.y);
  const int warp = tid / 32, lane = tid % 32;
#pragma unroll
  for (int j = 0; j < NP / 8; ++j)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int n = n0 + warp * 16 + lane / 4 + (r >> 1) * 8;
      const int m = j * 8 + (lane % 4) * 2 + (r & 1);
      if (m < a.M && n < a.N) put(y + static_cast<size_t>(m) * a.N + n, acc[j * 4 + r]);
    }
}

// PIPE: the consumer keeps one stage's wgmmas in flight while it issues the next stage's (wgmma.wait_group 1)
// and frees a stage one unit late; without it, it waits for each stage's wgmmas before the next (the first
// version; GemmTmaTuning::pipelined = false). The same sums either way.
// SETS: independent accumulator sets, the unit's k16 slice kk going to set kk % SETS (1: one chain of dependent
// wgmmas; 4: four chains, each one wgmma a unit, added in set order when the tile is done). A different, fixed
// order of the same sums.
template <int NP, bool PIPE, int SETS, typename OutT>
__global__ void __launch_bounds__(kThreads, 1)
    gemm_tma_kernel(const __grid_constant__ CUtensorMap wmap, const __grid_constant__ CUtensorMap xmap,
                    const TmaArgs a) {
  extern __shared__ uint8_t tma_raw[];
  const TmaSmem<NP> sm{reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(tma_raw) + 1023) & ~uintptr_t(1023)),
                       a.stages};
  const int tid = threadIdx.x, G = gridDim.x;
  const long long U = a.units;
  const long long u0 = unit_begin(blockIdx.x, U, G), u1 = unit_begin(blockIdx.x + 1, U, G);
  const int C = a.chunks;
  const int S = a.stages;
  unsigned long long* ph = a.phases ? a.phases + static_cast<size_t>(blockIdx.x) * kTmaPhaseSlots : nullptr;
  if (tid == kConsumers) {
    if (ph) {
      ph[0] = hp::global_ns();
      ph[1] = clock64();
    }
    if (a.prefetch) {
      hp::prefetch_tensormap(&wmap);
      hp::prefetch_tensormap(&xmap);
    }
  }
  if (tid == 0) {
    for (int s = 0; s < S; ++s) {
      hp::mbar_init(sm.full(s), 1);
      hp::mbar_init(sm.empty(s), kConsumers / 32);
    }
    hp::fence_barrier_init();
  }
  __syncthreads();
  pdl_launch_dependents();

  if (tid >= kConsumers) {  // the producer warp: one thread issues every copy
    if (tid != kConsumers) return;
    const uint32_t bytes = (kRows + NP) * kChunk * sizeof(bf16);
    const uint64_t policy = hp::l2_evict_first_policy();
    const UnitOrder ord(u0, u1, C, a.partials_first != 0);
    const int n = static_cast<int>(u1 - u0), pre = n < S ? n : S;
    auto load_w = [&](int s, long long u) {
      if (a.evict_first)
        hp::tma_load_2d_stream(sm.w(s), &wmap, sm.full(s), static_cast<int>(u % C) * kChunk,
                               static_cast<int>(u / C) * kRows, policy);
      else
        hp::tma_load_2d(sm.w(s), &wmap, sm.full(s), static_cast<int>(u % C) * kChunk, static_cast<int>(u / C) * kRows);
    };
    for (int i = 0; i < pre; ++i) {
      hp::mbar_arrive_expect_tx(sm.full(i), bytes);
      load_w(i, ord.unit(i));
    }
    pdl_wait();  // x is the previous kernel's output
    for (int i = 0; i < pre; ++i)
      hp::tma_load_2d(sm.x(i), &xmap, sm.full(i), static_cast<int>(ord.unit(i) % C) * kChunk, 0);
    if (ph) {  // measurements only: the producer waits for the first stage itself (it has nothing to issue yet)
      ph[2] = clock64();
      if (pre > 0) hp::mbar_wait(sm.full(0), 0);
      ph[3] = clock64();
    }
    for (int i = pre; i < n; ++i) {
      const int s = i % S;
      hp::mbar_wait(sm.empty(s), ((i / S) + 1) & 1);
      const long long u = ord.unit(i);
      hp::mbar_arrive_expect_tx(sm.full(s), bytes);
      load_w(s, u);
      hp::tma_load_2d(sm.x(s), &xmap, sm.full(s), static_cast<int>(u % C) * kChunk, 0);
    }
    if (ph) ph[4] = clock64();
    return;
  }

  pdl_wait();  // y, the partials and the counters: after every earlier kernel
  float sets[SETS][NP / 2];
#pragma unroll
  for (int k = 0; k < SETS; ++k)
#pragma unroll
    for (int i = 0; i < NP / 2; ++i) sets[k][i] = 0.f;
  float acc[NP / 2];
  const int first_tile = static_cast<int>(u0 / C);
  // The block's units as segments, one a tile, in UnitOrder: units i0 .. i0 + len - 1 of the block are
  // [ub, ub + len) of tile `tile`.
  const UnitOrder ord(u0, u1, C, a.partials_first != 0);
  for (long long i0 = 0; i0 < u1 - u0;) {
    const long long ub = ord.unit(i0);
    const int tile = static_cast<int>(ub / C);
    const long long tile_end = static_cast<long long>(tile + 1) * C;
    const long long len = (u1 < tile_end ? u1 : tile_end) - ub;
    const bool whole = ub % C == 0 && len == C;
    // The block's j-th unit (ub + j - i0): wait for its stage, four wgmmas (the first of each set in the
    // segment overwrites it).
    auto issue = [&](long long j) {
      const int jj = static_cast<int>(j);  // a block's units fit an int
      const int s = jj % S;
      hp::mbar_wait(sm.full(s), static_cast<uint32_t>((jj / S) & 1));
      hp::wgmma_fence();
      const uint64_t da = hp::sw128_desc(sm.w(s)), db = hp::sw128_desc(sm.x(s));
#pragma unroll
      for (int kk = 0; kk < kChunk / 16; ++kk)
        hp::wgmma_bf16<NP>(sets[kk % SETS], da + 2 * kk, db + 2 * kk, j == i0 && kk < SETS ? 0 : 1);
      hp::wgmma_commit();
      return s;
    };
    auto fence_sets = [&] {
#pragma unroll
      for (int k = 0; k < SETS; ++k)
#pragma unroll
        for (int q = 0; q < NP / 2; ++q) hp::fence_operand(sets[k][q]);
    };
    fence_sets();  // the last segment's reads of the sets stay before this one's first wgmma
    if (PIPE) {
      // One unit's group stays in flight while the next is issued; a stage is freed once its group is done.
      // No branch but the loop's own while a group is in flight (ptxas serializes wgmmas across divergent code).
      int prev = issue(i0);
      for (long long j = i0 + 1; j < i0 + len; ++j) {
        const int s = issue(j);
        hp::wgmma_wait<1>();
        hp::mbar_arrive_if(sm.empty(prev), tid % 32 == 0);
        prev = s;
      }
      hp::wgmma_wait<0>();
      hp::mbar_arrive_if(sm.empty(prev), tid % 32 == 0);
    } else {
      for (long long j = i0; j < i0 + len; ++j) {
        const int s = issue(j);
        hp::wgmma_wait<0>();
        hp::mbar_arrive_if(sm.empty(s), tid % 32 == 0);
      }
    }
    fence_sets();  // and this segment's reads stay after its last wait
    i0 += len;

    // The block's range leaves this tile.
#pragma unroll
    for (int i = 0; i < NP / 2; ++i) {
      float v = sets[0][i];
#pragma unroll
      for (int k = 1; k < SETS; ++k) v += sets[k][i];
      acc[i] = v;
    }
    const int n0 = tile * kRows;
    if (whole) {
      store_tile<NP, OutT>(acc, a, n0, tid);
      continue;
    }
    const int slot = tile == first_tile ? 0 : 1;
    float* mine = a.partials + ((static_cast<size_t>(blockIdx.x) * 2 + slot) * kConsumers + tid) * (NP / 2);
#pragma unroll
    for (int q = 0; q < NP / 2; q += 4)
      *reinterpret_cast<float4*>(mine + q) = make_float4(acc[q], acc[q + 1], acc[q + 2], acc[q + 3]);
    __threadfence();
    hp::named_barrier(1, kConsumers);
    const long long tu0 = static_cast<long long>(tile) * C, tu1 = tu0 + C - 1;
    const int b0 = block_of_unit(tu0, U, G), b1 = block_of_unit(tu1, U, G);
    if (tid == 0) {
      const unsigned before = atomicAdd(&a.counters[tile], 1u);
      const bool last = before == static_cast<unsigned>(b1 - b0);
      if (last) a.counters[tile] = 0;
      sm.last() = last;
    }
    hp::named_barrier(1, kConsumers);
    if (!sm.last()) continue;
    __threadfence();
    float sum[NP / 2];
#pragma unroll
    for (int q = 0; q < NP / 2; ++q) sum[q] = 0.f;
    for (int b = b0; b <= b1; ++b) {
      const int bslot = tile == static_cast<int>(unit_begin(b, U, G) / C) ? 0 : 1;
      const float* p = a.partials + ((static_cast<size_t>(b) * 2 + bslot) * kConsumers + tid) * (NP / 2);
#pragma unroll
      for (int q = 0; q < NP / 2; q += 4) {
        const float4 v = __ldcg(reinterpret_cast<const float4*>(p + q));
        sum[q] += v.x;
        sum[q + 1] += v.y;
        sum[q + 2] += v.z;
        sum[q + 3] += v.w;
      }
    }
    store_tile<NP, OutT>(sum, a, n0, tid);
  }
  if (ph && tid == 0) {
    ph[5] = clock64();
    ph[6] = hp::global_ns();
  }
}

int tiles_of(int N) { return (N + kRows - 1) / kRows; }

template <int NP, bool PIPE, int SETS, typename OutT>
void launch(const bf16* x, const bf16* w, void* y, int M, int N, int K, const TmaScratch& scratch,
            const GemmTmaTuning& t, cudaStream_t s) {
  auto kernel = gemm_tma_kernel<NP, PIPE, SETS, OutT>;
  // The most stages a block's shared memory holds (13 at NP = 64), and the opt-in for them: set once, so a later
  // call with a larger ring than this one still launches.
  static const int fit = [] {
    int dev = 0, optin = 0;
    LLM_CUDA_CHECK(cudaGetDevice(&dev));
    LLM_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    int n = kMaxStages;
    while (n > 2 && TmaSmem<NP>::bytes(n) + 1024 > static_cast<size_t>(optin)) --n;
    return n;
  }();
  const int want = t.stages >= 2 && t.stages <= kMaxStages ? t.stages : stages_of<NP>();
  const int S = std::min(want, fit);
  const size_t smem = TmaSmem<NP>::bytes(S) + 1024;
  // The shared-memory opt-in is per device: set it once on each device this process launches on.
  static std::atomic<uint64_t> attr_set{0};
  int dev = 0;
  LLM_CUDA_CHECK(cudaGetDevice(&dev));
  const uint64_t bit = uint64_t(1) << (dev & 63);
  if (!(attr_set.load(std::memory_order_acquire) & bit)) {
    const int most = static_cast<int>(TmaSmem<NP>::bytes(fit) + 1024);
    LLM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, most));
    attr_set.fetch_or(bit, std::memory_order_acq_rel);
  }
  TmaArgs a;
  a.y = y;
  a.partials = scratch.partials();
  a.counters = scratch.counters();
  a.M = M;
  a.N = N;
  a.K = K;
  a.chunks = (K + kChunk - 1) / kChunk;
  a.units = static_cast<long long>(tiles_of(N)) * a.chunks;
  a.stages = S;
  a.prefetch = t.prefetch_descriptors ? 1 : 0;
  a.phases = scratch.phases();
  a.evict_first = t.evict_first ? 1 : 0;
  a.partials_first = t.partials_first ? 1 : 0;
  const int G = static_cast<int>(std::min<long long>(device_sm_count(), a.units));
  const CUtensorMap wm = bf16_tile_map(w, N, K, kRows, kChunk, "gemm_tma"),
                    xm = bf16_tile_map(x, M, K, NP, kChunk, "gemm_tma");
  if (t.pdl) {
    launch_pdl(kernel, dim3(G), dim3(kThreads), smem, s, wm, xm, a);
  } else {
    if (kernel_carveout() >= 0) apply_kernel_carveout(reinterpret_cast<const void*>(kernel));
    kernel<<<G, kThreads, smem, s>>>(wm, xm, a);
    LLM_CUDA_CHECK(cudaGetLastError());
  }
}

template <bool PIPE, int SETS, typename OutT>
void dispatch(const bf16* x, const bf16* w, void* y, int M, int N, int K, const TmaScratch& sc,
              const GemmTmaTuning& t, cudaStream_t s) {
  if (M <= 8) launch<8, PIPE, SETS, OutT>(x, w, y, M, N, K, sc, t, s);
  else if (M <= 16) launch<16, PIPE, SETS, OutT>(x, w, y, M, N, K, sc, t, s);
  else if (M <= 32) launch<32, PIPE, SETS, OutT>(x, w, y, M, N, K, sc, t, s);
  else launch<64, PIPE, SETS, OutT>(x, w, y, M, N, K, sc, t, s);
}

template <typename OutT>
void dispatch(const bf16* x, const bf16* w, void* y, int M, int N, int K, const TmaScratch& sc, cudaStream_t s) {
  const GemmTmaTuning t = tuning();
  const bool four = t.accumulator_sets != 1;
  if (t.pipelined)
    four ? dispatch<true, 4, OutT>(x, w, y, M, N, K, sc, t, s) : dispatch<true, 1, OutT>(x, w, y, M, N, K, sc, t, s);
  else
    four ? dispatch<false, 4, OutT>(x, w, y, M, N, K, sc, t, s) : dispatch<false, 1, OutT>(x, w, y, M, N, K, sc, t, s);
}

}  // namespace

TmaScratch::TmaScratch() {
  const size_t floats = static_cast<size_t>(device_sm_count()) * 2 * kConsumers * (kTmaMaxM / 2);
  LLM_CUDA_CHECK(cudaMalloc(&partials_, floats * sizeof(float)));
  LLM_CUDA_CHECK(cudaMalloc(&counters_, kMaxTiles * sizeof(unsigned)));
  LLM_CUDA_CHECK(cudaMemset(counters_, 0, kMaxTiles * sizeof(unsigned)));
}

TmaScratch::~TmaScratch() {
  cudaFree(partials_);
  cudaFree(counters_);
}

bool gemm_tma_supported(int M, int N, int K, const void* x, const void* w) {
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return M >= 1 && M <= kTmaMaxM && N >= 1 && K >= 8 && K % 8 == 0 && tiles_of(N) <= TmaScratch::kMaxTiles &&
         aligned(x) && aligned(w) && device_is_sm90();
}

void gemm_tma(const bf16* x, const bf16* w, void* y, bool y_f32, int M, int N, int K, const TmaScratch& scratch,
              cudaStream_t s) {
  if (!gemm_tma_supported(M, N, K, x, w))
    throw std::invalid_argument("gemm_tma: unsupported shape M " + std::to_string(M) + " N " + std::to_string(N) +
                                " K " + std::to_string(K) + " (needs an sm_90 device, M <= 64, K % 8 == 0, 16-byte "
                                "aligned x and w)");
  if (y_f32) dispatch<float>(x, w, y, M, N, K, scratch, s);
  else dispatch<bf16>(x, w, y, M, N, K, scratch, s);
}

void set_gemm_tma_tuning(const GemmTmaTuning& t) {
  std::lock_guard<std::mutex> lock(g_tuning_mutex);
  g_tuning = t;
}

}  // namespace engine::cuda
