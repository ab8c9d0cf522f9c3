// Skinny GEMMs for decode steps: y[m, n] = sum_k x[m, k] * w[n, k] for M <= kSkinnyMaxM rows (bf16 in, f32
// accumulation on the tensor cores, f32 or bf16 out). At such M a decode GEMM is a stream over the weights
// (7B: 13.4 GB per step) with next to no arithmetic per byte; cuBLAS's kernels at M = 16..64 read the weights
// at 50-85 % of the copy bandwidth on the H200 (docs/cuda-notes.md), this kernel aims at the copy rate.
//
// Shape of the work. A block owns 8 * kNT output columns and all M rows; its kKW warps split K between them
// (chunk c of 32 k goes to warp c % kKW, so the block reads each weight row in 512-byte runs) and add their
// partial sums through shared memory at the end. Each lane streams one 16-byte piece of a weight row per
// chunk and column group, kU chunks ahead, so a warp keeps kU * kNT * 512 bytes of weights in flight.
//
// The mma. mma.sync.m16n8k16 (bf16 x bf16 -> f32) multiplies a 16 x 16 A (x) by a 16 x 8 B (w^T). Lane
// (g = lane / 4, t = lane % 4) holds B's column g at k = {2t, 2t+1, 2t+8, 2t+9} and A's rows g, g + 8 at the same
// k. A sum over k may visit k in any order as long as A and B agree, so a 32-k chunk is read with each lane
// taking 8 consecutive k (16 bytes: 8t .. 8t+7 of its row) and the chunk's two mmas see physical k
//   mma 0: logical {2t, 2t+1, 2t+8, 2t+9} = physical {8t, 8t+1, 8t+2, 8t+3}
//   mma 1: logical {2t, 2t+1, 2t+8, 2t+9} = physical {8t+4, 8t+5, 8t+6, 8t+7}
// i.e. the first and second halves of the lane's own 16-byte loads of w and x: no shuffles, no shared memory
// on the way in. Rows of x past M read as zeros (their results are not stored).
//
// Each output is the same sum in the same order whatever M is (a row's result never depends on other rows,
// and the chunk-to-warp split depends on K only).
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

constexpr int kKW = 8;   // warps per block, splitting K
constexpr int kNT = 2;   // 8-column groups per block
constexpr int kU = 4;    // chunks of 32 k in flight per warp
constexpr int kChunk = 32;

using mma::ldg16;
using mma::ldg16_stream;
using mma::mma_bf16;
using mma::store;

// MT: m-tiles of 16 rows (M <= 16 * MT).
template <int MT, typename OutT>
__global__ void __launch_bounds__(kKW * 32) skinny_gemm_kernel(const bf16* __restrict__ x, const bf16* __restrict__ w,
                                                               OutT* __restrict__ y, int M, int N, int K) {
  __shared__ float red[kKW][MT * 16][kNT * 8];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const int n0 = blockIdx.x * (kNT * 8);
  const int chunks = K / kChunk;

  float acc[MT][kNT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int j = 0; j < kNT; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[mt][j][r] = 0.f;

  // This lane's weight rows (one per column group) and x rows (two per m-tile), at k offset 8t of a chunk.
  const bf16* wrow[kNT];
#pragma unroll
  for (int j = 0; j < kNT; ++j) wrow[j] = w + static_cast<int64_t>(n0 + j * 8 + g) * K + t * 8;
  const uint4 zero = make_uint4(0, 0, 0, 0);

  for (int c0 = warp; c0 < chunks; c0 += kKW * kU) {
    uint4 wv[kU][kNT];
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int c = c0 + u * kKW;
#pragma unroll
      for (int j = 0; j < kNT; ++j) wv[u][j] = c < chunks ? ldg16_stream(wrow[j] + c * kChunk) : zero;
    }
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int c = c0 + u * kKW;
      if (c >= chunks) break;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        const int r0 = mt * 16 + g, r1 = r0 + 8;
        const uint4 x0 = r0 < M ? ldg16(x + static_cast<int64_t>(r0) * K + c * kChunk + t * 8) : zero;
        const uint4 x1 = r1 < M ? ldg16(x + static_cast<int64_t>(r1) * K + c * kChunk + t * 8) : zero;
#pragma unroll
        for (int j = 0; j < kNT; ++j) {
          mma_bf16(acc[mt][j], x0.x, x1.x, x0.y, x1.y, wv[u][j].x, wv[u][j].y);
          mma_bf16(acc[mt][j], x0.z, x1.z, x0.w, x1.w, wv[u][j].z, wv[u][j].w);
        }
      }
    }
  }

  // D fragment: acc[.][.][0..1] = rows g, columns 2t, 2t+1; acc[.][.][2..3] = row g + 8, same columns.
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int j = 0; j < kNT; ++j) {
      red[warp][mt * 16 + g][j * 8 + 2 * t] = acc[mt][j][0];
      red[warp][mt * 16 + g][j * 8 + 2 * t + 1] = acc[mt][j][1];
      red[warp][mt * 16 + g + 8][j * 8 + 2 * t] = acc[mt][j][2];
      red[warp][mt * 16 + g + 8][j * 8 + 2 * t + 1] = acc[mt][j][3];
    }
  __syncthreads();
  // The warps' partial sums, added in warp order (fixed: the same for every M).
  for (int i = threadIdx.x; i < MT * 16 * kNT * 8; i += kKW * 32) {
    const int row = i / (kNT * 8), col = i % (kNT * 8);
    if (row >= M) continue;
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < kKW; ++k) s += red[k][row][col];
    store(y + static_cast<int64_t>(row) * N + n0 + col, s);
  }
}

template <int MT>
void launch(const bf16* x, const bf16* w, void* y, bool y_f32, int M, int N, int K, cudaStream_t s) {
  const dim3 grid(N / (kNT * 8));
  if (y_f32) skinny_gemm_kernel<MT, float><<<grid, kKW * 32, 0, s>>>(x, w, static_cast<float*>(y), M, N, K);
  else skinny_gemm_kernel<MT, bf16><<<grid, kKW * 32, 0, s>>>(x, w, static_cast<bf16*>(y), M, N, K);
  LLM_CUDA_LAUNCHED(skinny_gemm_kernel);
}


}  // namespace

bool skinny_gemm_supported(int M, int N, int K) {
  return M >= 1 && M <= kSkinnyMaxM && N % (kNT * 8) == 0 && K % kChunk == 0;
}

void skinny_gemm(const bf16* x, const bf16* w, void* y, bool y_f32, int M, int N, int K, cudaStream_t s) {
  if (!skinny_gemm_supported(M, N, K))
    throw std::invalid_argument("skinny_gemm: M " + std::to_string(M) + ", N " + std::to_string(N) + ", K " +
                                std::to_string(K) + " (needs 1 <= M <= 64, N % 16 == 0, K % 32 == 0)");
  switch ((M + 15) / 16) {
    case 1: launch<1>(x, w, y, y_f32, M, N, K, s); break;
    case 2: launch<2>(x, w, y, y_f32, M, N, K, s); break;
    case 3: launch<3>(x, w, y, y_f32, M, N, K, s); break;
    default: launch<4>(x, w, y, y_f32, M, N, K, s); break;
  }
}

}  // namespace engine::cuda
