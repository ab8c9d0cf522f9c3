// The deterministic mode's definition of a GEMM's sums (kernels.h, ordered_gemm), and the small kernels that
// check another GEMM against it: a counter of unequal elements and a random fill.
//
// ordered_gemm is the plainest tensor-core GEMM: one warp per 16-row x 8-column tile of y, k from 0 to K in
// steps of 16, one mma.sync.m16n8k16 (bf16 x bf16 -> f32) per step into one f32 accumulator, fragments loaded
// straight from global memory (two bf16 per 32-bit load; k past K reads as zero). Slow, and not meant to be
// fast: it is what "the sum in k order, 16 products at a time, one accumulator" means, so that any faster
// kernel (a cuBLASLt algorithm, gemm_tuned.h) can be checked against it bit for bit.
#include <stdexcept>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace engine::cuda {
namespace {

__device__ inline uint32_t load_pair(const bf16* row, int k, int K) {
  return k < K ? *reinterpret_cast<const uint32_t*>(row + k) : 0u;
}

template <bool F32>
__global__ void ordered_gemm_kernel(const bf16* __restrict__ x, const bf16* __restrict__ w, void* __restrict__ y,
                                    int M, int N, int K) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int ntiles = (N + 7) / 8, mt = warp / ntiles, nt = warp % ntiles;
  if (mt * 16 >= M) return;
  const int r0 = mt * 16 + g, r1 = r0 + 8, c = nt * 8 + g;
  const bf16* x0 = x + size_t(r0) * K;
  const bf16* x1 = x + size_t(r1) * K;
  const bf16* wc = w + size_t(c) * K;
  float d[4] = {0.f, 0.f, 0.f, 0.f};
  for (int k0 = 0; k0 < K; k0 += 16) {
    // Fragments of m16n8k16: A (x) rows g, g + 8 at k = 2t, 2t+1 and 2t+8, 2t+9; B (w^T) column g at the same k.
    const int ka = k0 + 2 * t, kb = ka + 8;
    const uint32_t a0 = r0 < M ? load_pair(x0, ka, K) : 0u, a1 = r1 < M ? load_pair(x1, ka, K) : 0u;
    const uint32_t a2 = r0 < M ? load_pair(x0, kb, K) : 0u, a3 = r1 < M ? load_pair(x1, kb, K) : 0u;
    const uint32_t b0 = c < N ? load_pair(wc, ka, K) : 0u, b1 = c < N ? load_pair(wc, kb, K) : 0u;
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }
  // D: d[0], d[1] at row g, columns 2t, 2t + 1 of the tile; d[2], d[3] at row g + 8.
  const int oc = nt * 8 + 2 * t;
  auto store = [&](int r, int col, float v) {
    if (r >= M || col >= N) return;
    if constexpr (F32) static_cast<float*>(y)[size_t(r) * N + col] = v;
    else static_cast<bf16*>(y)[size_t(r) * N + col] = __float2bfloat16_rn(v);
  };
  store(r0, oc, d[0]);
  store(r0, oc + 1, d[1]);
  store(r1, oc, d[2]);
  store(r1, oc + 1, d[3]);
}

__global__ void count_unequal_kernel(const uint16_t* __restrict__ a, const uint16_t* __restrict__ b, size_t n,
                                     unsigned long long* count) {
  unsigned long long mine = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    mine += a[i] != b[i];
  if (mine) atomicAdd(count, mine);
}

__global__ void fill_random_bf16_kernel(bf16* p, size_t n, uint64_t seed, float scale) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint64_t z = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;  // splitmix64 of the index
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    p[i] = __float2bfloat16_rn((float(z >> 40) / 16777216.f * 2.f - 1.f) * scale);
  }
}

}  // namespace

void ordered_gemm(const bf16* x, const bf16* w, void* y, bool y_f32, int M, int N, int K, cudaStream_t s) {
  if (K % 2 != 0) throw std::invalid_argument("ordered_gemm: K = " + std::to_string(K) + " is odd");
  if (M <= 0 || N <= 0) return;
  const long long warps = (long long)((M + 15) / 16) * ((N + 7) / 8);
  const int per_block = 4;
  const unsigned blocks = unsigned((warps + per_block - 1) / per_block);
  if (y_f32) ordered_gemm_kernel<true><<<blocks, 32 * per_block, 0, s>>>(x, w, y, M, N, K);
  else ordered_gemm_kernel<false><<<blocks, 32 * per_block, 0, s>>>(x, w, y, M, N, K);
  LLM_CUDA_CHECK(cudaGetLastError());
}

void count_unequal_u16(const void* a, const void* b, size_t n, unsigned long long* count, cudaStream_t s) {
  LLM_CUDA_CHECK(cudaMemsetAsync(count, 0, sizeof *count, s));
  if (n == 0) return;
  count_unequal_kernel<<<1024, 256, 0, s>>>(static_cast<const uint16_t*>(a), static_cast<const uint16_t*>(b), n,
                                            count);
  LLM_CUDA_CHECK(cudaGetLastError());
}

void fill_random_bf16(bf16* p, size_t n, uint64_t seed, float scale, cudaStream_t s) {
  if (n == 0) return;
  fill_random_bf16_kernel<<<1024, 256, 0, s>>>(p, n, seed, scale);
  LLM_CUDA_CHECK(cudaGetLastError());
}

}  // namespace engine::cuda
