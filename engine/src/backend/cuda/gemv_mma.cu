// gemv_mma (kernels.h; docs/cuda-notes.md, v13): the unit layout of gemv_units on the tensor cores, for decode
// GEMMs of 1..kMmaMaxM rows. The k permutation of each 32-k chunk is gemm_skinny.cu's (its header says why any
// order that A and B agree on gives the same sum).
#include <cuda_bf16.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma_frag.cuh"
#include "backend/cuda/pdl.cuh"

namespace engine::cuda {
namespace {

using mma::ldg16;
using mma::ldg16_stream;
using mma::mma_bf16;
using mma::store;

// The unit-layout idea of gemv_units (one block per SM over a contiguous range of rows, the work cut into
// small pieces dealt evenly to the warps, x in shared memory) with the inner product on the tensor cores.
// The weights are A (16 rows x 16 k) and x is B (16 k x 8 tokens, M padded to 8; M = 9..16: two n8 tiles
// sharing the A fragment). With the k permutation above, lane (g, t) loads 16 contiguous bytes of weight row
// g and 16 of row g + 8 at k = 32c + 8t .. +7: its A fragments for the chunk's two mmas; its B fragments are
// x[g][32c + 8t .. +7], one 16-byte shared-memory load. A warp step is 16 rows x 32 k (1 KB of weights): two
// 16-byte global loads and one (two at M > 8) 16-byte shared load per lane, two (four) mmas. No conversion,
// no per-element FMA: the work per weight byte does not grow with M (v12's scalar kernel did).
//
// The layout. A block owns rows [r0, r0 + R), R = ceil(N / SMs), as 16-row tiles (the last one partial:
// rows past R load nothing and are not stored); its steps (tile, 32-k chunk), tile-major, are cut into
// kMmaWarps contiguous ranges, one per warp, that differ by at most one step. A warp walks its range in
// groups of up to kMmaU steps of one tile, the next group's loads in flight while this one is multiplied, and
// keeps its accumulators in registers until its range leaves the tile; then the 16 x 8 (x 2) partial sums go
// to shared memory, slot (warp + tile), which no other (warp, tile) pair uses (a warp's tiles are
// consecutive and the next warp starts at or after the tile where this one ends). After a barrier each output
// adds the partials of the warps that touched its tile, in warp order. The cut depends on N, K and the SM
// count only, and an mma's output column depends only on its own column of B, so a row's result is the same
// bits whatever M is.
//
// x in shared memory needs M * K bf16 (plus padding): at M = 16 and K = 11008 that is more than a block may
// take, so such shapes (and all, with set_gemv_mma_x_shared(false)) read x with ordinary cached loads
// instead (the weights bypass L1, so x stays there); measured far slower, so the backend skips those shapes.
//
// Measured on the H200 (docs/cuda-notes.md, v13): the stream runs at ~85 % of gemv_units' M = 1 rate, so it
// only ties cuBLAS at M = 4 and 8 and loses at 16; off by default (LLM_CUDA_GEMV_MMA=1).
constexpr int kMmaWarps = 16;
constexpr int kMmaThreads = kMmaWarps * 32;
constexpr int kMmaU = 4;  // 32-k steps per group: 4 KB of weights a warp, 64 KB a block, in flight

struct MmaArgs {
  const bf16* x = nullptr;
  const bf16* w = nullptr;
  void* y = nullptr;
  int M = 0, N = 0, K = 0, rows_per_block = 0;
  int xstride = 0;  // elements between x rows in shared memory
};

__host__ __device__ inline int mma_tiles(int R) { return (R + 15) / 16; }
__host__ __device__ inline int mma_chunks(int K) { return (K + 31) / 32; }

// Rows of x in shared memory at a stride of 64 bytes modulo 128, so the 8 lanes of a quarter warp (tokens g,
// g + 1 at 16 t bytes) hit 8 different 16-byte bank groups.
int mma_xstride(int K) {
  const int b = 2 * K;
  return (b + (64 - b % 128 + 128) % 128) / 2;
}

size_t mma_smem(int M, int K, int R, bool xs) {
  const size_t part = static_cast<size_t>(mma_tiles(R) + kMmaWarps) * 16 * (M <= 8 ? 8 : 16) * sizeof(float);
  return (xs ? static_cast<size_t>(M) * mma_xstride(K) * sizeof(bf16) : 0) + part;
}

template <int NT, bool XS, bool PP, typename OutT>
__global__ void __launch_bounds__(kMmaThreads, 1) gemv_mma_kernel(const MmaArgs a) {
  extern __shared__ uint4 mma_smem_buf[];
  constexpr int MP = 8 * NT;  // tokens per partial row
  const int K = a.K, M = a.M;
  const bf16* xs = reinterpret_cast<const bf16*>(mma_smem_buf);
  float* part = reinterpret_cast<float*>(mma_smem_buf) + (XS ? M * (a.xstride / 2) : 0);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const int r0 = blockIdx.x * a.rows_per_block;
  const int R = max(0, min(a.rows_per_block, a.N - r0));
  const int C = mma_chunks(K), T = mma_tiles(R) * C;
  const int s_end = (warp + 1) * T / kMmaWarps;
  pdl_launch_dependents();

  const uint4 zero = make_uint4(0, 0, 0, 0);
  // Steps in the group that starts at step s: up to kMmaU, within one tile and the warp's range.
  const auto group_len = [&](int s) { return s < s_end ? min(min(kMmaU, C - s % C), s_end - s) : 0; };
  // Two register sets of kMmaU steps each. PP (ping-pong): while one set is multiplied the other one's loads
  // are in flight, and the set just used is refilled right after, so a warp has up to two groups (8 KB) in
  // flight and no register copy waits on a pending load. !PP (the first version, LLM_CUDA_GEMV_MMA_PP=0):
  // the next group is loaded into set 0 while a copy of it in set 1 is multiplied; the copy itself waits for
  // the loads, so a warp has about one group in flight.
  uint4 wa0[kMmaU], wb0[kMmaU], wa1[kMmaU], wb1[kMmaU];
  const auto fetch = [&](uint4 (&wa)[kMmaU], uint4 (&wb)[kMmaU], int s, int n) {
    const int tile = s / C, c0 = s - tile * C;
    const int ra = tile * 16 + g, rb = ra + 8;
    const bf16* pa = a.w + static_cast<int64_t>(r0 + min(ra, R - 1)) * K + c0 * 32 + 8 * t;
    const bf16* pb = a.w + static_cast<int64_t>(r0 + min(rb, R - 1)) * K + c0 * 32 + 8 * t;
    const int kl = K - (c0 * 32 + 8 * t);  // this lane's k is valid at step u while 32 u < kl
#pragma unroll
    for (int u = 0; u < kMmaU; ++u) {
      const bool kin = u < n && 32 * u < kl;
      wa[u] = kin && ra < R ? ldg16_stream(pa + 32 * u) : zero;
      wb[u] = kin && rb < R ? ldg16_stream(pb + 32 * u) : zero;
    }
  };
  const int s_first = warp * T / kMmaWarps;
  const int n_first = group_len(s_first);
  // Weights are constant: the first group's loads (both groups' with PP) are in flight before the wait.
  if (n_first > 0) fetch(wa0, wb0, s_first, n_first);
  const int s_second = s_first + n_first, n_second = group_len(s_second);
  if constexpr (PP) {
    if (n_second > 0) fetch(wa1, wb1, s_second, n_second);
  }
  pdl_wait();
  if constexpr (XS) {
    bf16* xw = reinterpret_cast<bf16*>(mma_smem_buf);
    const int per_row = K / 8;
    for (int c = threadIdx.x; c < M * per_row; c += kMmaThreads) {
      const int m = c / per_row, j = c - m * per_row;
      *reinterpret_cast<uint4*>(xw + m * a.xstride + j * 8) =
          *reinterpret_cast<const uint4*>(a.x + static_cast<int64_t>(m) * K + j * 8);
    }
    __syncthreads();
  }
  const auto load_x = [&](int m, int k) -> uint4 {
    if (m >= M || k >= K) return zero;
    if constexpr (XS) return *reinterpret_cast<const uint4*>(xs + m * a.xstride + k);
    else return ldg16(a.x + static_cast<int64_t>(m) * K + k);
  };

  float acc[NT][4];
#pragma unroll
  for (int j = 0; j < NT; ++j)
#pragma unroll
    for (int r = 0; r < 4; ++r) acc[j][r] = 0.f;
  const auto compute = [&](const uint4 (&ca)[kMmaU], const uint4 (&cb)[kMmaU], int s, int n) {
    const int c0 = s % C;
#pragma unroll
    for (int u = 0; u < kMmaU; ++u) {
      if (u >= n) break;
      const int k = (c0 + u) * 32 + 8 * t;
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const uint4 xv = load_x(8 * j + g, k);
        mma_bf16(acc[j], ca[u].x, cb[u].x, ca[u].y, cb[u].y, xv.x, xv.y);
        mma_bf16(acc[j], ca[u].z, cb[u].z, ca[u].w, cb[u].w, xv.z, xv.w);
      }
    }
  };
  // After the group at step s: when the next group (at sn, nn steps) is in another tile or there is none, the
  // tile's partial sums go to their slot.
  const auto flush_if = [&](int s, int sn, int nn) {
    const int tile = s / C;
    if (nn > 0 && sn / C == tile) return;
    // D fragment: acc[j][0..1] = row g, tokens 8j + 2t, +1; acc[j][2..3] = row g + 8, the same tokens.
    float* p = part + (warp + tile) * 16 * MP;
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      *reinterpret_cast<float2*>(p + g * MP + 8 * j + 2 * t) = make_float2(acc[j][0], acc[j][1]);
      *reinterpret_cast<float2*>(p + (g + 8) * MP + 8 * j + 2 * t) = make_float2(acc[j][2], acc[j][3]);
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[j][r] = 0.f;
    }
  };
  if constexpr (PP) {
    int s0 = s_first, n0 = n_first, s1 = s_second, n1 = n_second;
    while (n0 > 0) {
      compute(wa0, wb0, s0, n0);
      flush_if(s0, s1, n1);
      const int s2 = s1 + n1, n2 = group_len(s2);
      if (n2 > 0) fetch(wa0, wb0, s2, n2);
      if (n1 == 0) break;
      compute(wa1, wb1, s1, n1);
      flush_if(s1, s2, n2);
      const int s3 = s2 + n2, n3 = group_len(s3);
      if (n3 > 0) fetch(wa1, wb1, s3, n3);
      s0 = s2;
      n0 = n2;
      s1 = s3;
      n1 = n3;
    }
  } else {
    int s = s_first, n = n_first;
    while (n > 0) {
#pragma unroll
      for (int u = 0; u < kMmaU; ++u) {
        wa1[u] = wa0[u];
        wb1[u] = wb0[u];
      }
      const int sn = s + n, nn = group_len(sn);
      if (nn > 0) fetch(wa0, wb0, sn, nn);
      compute(wa1, wb1, s, n);
      flush_if(s, sn, nn);
      s = sn;
      n = nn;
    }
  }
  __syncthreads();
  OutT* y = static_cast<OutT*>(a.y);
  for (int i = threadIdx.x; i < M * R; i += kMmaThreads) {
    const int m = i / R, r = i - m * R;
    const int tile = r / 16, lo = tile * C, hi = lo + C;
    float sum = 0.f;
#pragma unroll
    for (int w = 0; w < kMmaWarps; ++w) {
      const int b = w * T / kMmaWarps, e = (w + 1) * T / kMmaWarps;
      if (b < e && b < hi && e > lo) sum += part[((w + tile) * 16 + r % 16) * MP + m];
    }
    store(y + static_cast<int64_t>(m) * a.N + r0 + r, sum);
  }
}

size_t mma_smem_limit() { return static_cast<size_t>(device_smem_optin()); }

int mma_rows_per_block(int N) { return (N + device_sm_count() - 1) / device_sm_count(); }

std::atomic<bool> g_mma_x_shared{true};
std::atomic<bool> g_mma_pingpong{true};

template <int NT, bool XS, bool PP, typename OutT>
void launch_mma(const MmaArgs& a, size_t smem, int grid, cudaStream_t s) {
  if (smem > 48 * 1024) {
    static const bool set = [] {
      LLM_CUDA_CHECK(cudaFuncSetAttribute(gemv_mma_kernel<NT, XS, PP, OutT>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(mma_smem_limit())));
      return true;
    }();
    (void)set;
  }
  launch_pdl(gemv_mma_kernel<NT, XS, PP, OutT>, grid, kMmaThreads, smem, s, a);
}

template <int NT, bool XS>
void launch_mma_out(const MmaArgs& a, bool y_f32, size_t smem, int grid, cudaStream_t s) {
  const bool pp = g_mma_pingpong.load(std::memory_order_relaxed);
  if (y_f32) {
    if (pp) launch_mma<NT, XS, true, float>(a, smem, grid, s);
    else launch_mma<NT, XS, false, float>(a, smem, grid, s);
  } else {
    if (pp) launch_mma<NT, XS, true, bf16>(a, smem, grid, s);
    else launch_mma<NT, XS, false, bf16>(a, smem, grid, s);
  }
}

}  // namespace

void set_gemv_mma_x_shared(bool on) { g_mma_x_shared.store(on, std::memory_order_relaxed); }
void set_gemv_mma_pingpong(bool on) { g_mma_pingpong.store(on, std::memory_order_relaxed); }

bool gemv_mma_x_in_shared(int M, int N, int K) {
  return gemv_mma_supported(M, N, K) && mma_smem(M, K, mma_rows_per_block(N), true) <= mma_smem_limit();
}

bool gemv_mma_supported(int M, int N, int K) {
  if (M < 1 || M > kMmaMaxM || N < 1 || K < 8 || K % 8 != 0) return false;
  return mma_smem(M, K, mma_rows_per_block(N), false) <= mma_smem_limit();
}

void gemv_mma(const bf16* x, const bf16* w, void* y, bool y_f32, int M, int N, int K, cudaStream_t s) {
  if (!gemv_mma_supported(M, N, K))
    throw std::invalid_argument("gemv_mma: M " + std::to_string(M) + ", N " + std::to_string(N) + ", K " +
                                std::to_string(K) + " (needs 1 <= M <= 16, K % 8 == 0)");
  MmaArgs a;
  a.x = x;
  a.w = w;
  a.y = y;
  a.M = M;
  a.N = N;
  a.K = K;
  a.rows_per_block = mma_rows_per_block(N);
  a.xstride = mma_xstride(K);
  const int grid = (N + a.rows_per_block - 1) / a.rows_per_block;
  const size_t smem_xs = mma_smem(M, K, a.rows_per_block, true);
  const bool xs = g_mma_x_shared.load(std::memory_order_relaxed) && smem_xs <= mma_smem_limit();
  const size_t smem = xs ? smem_xs : mma_smem(M, K, a.rows_per_block, false);
  if (M <= 8) {
    if (xs) launch_mma_out<1, true>(a, y_f32, smem, grid, s);
    else launch_mma_out<1, false>(a, y_f32, smem, grid, s);
  } else {
    if (xs) launch_mma_out<2, true>(a, y_f32, smem, grid, s);
    else launch_mma_out<2, false>(a, y_f32, smem, grid, s);
  }
}

}  // namespace engine::cuda
