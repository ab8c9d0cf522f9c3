// See packed_gemm.h. The AVX2 kernel is compiled for that target only (function attributes) and chosen at run
// time, so the build needs no -march flag and still runs on a machine without AVX2.
#include "backend/cpu/packed_gemm.h"

#include "backend/cpu/cpu_kernels.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LLM_PACKED_GEMM_X86 1
#endif

namespace engine::cpu {
namespace {

constexpr int kPanel = PackedWeight::kPanel;
constexpr int kMaxRows = 6;  // rows per register tile: 6 x 2 accumulators + 2 weights + 1 broadcast of 16 ymm

/// One tile: rows [0, mr) of A against one panel, written to C's first `ncols` (<= 16) columns.
void tile_generic(float* C, int64_t ldc, const float* A, int64_t lda, const float* panel, int K, int mr,
                  int ncols, float beta) {
  float acc[kMaxRows][kPanel] = {};
  for (int k = 0; k < K; ++k) {
    const float* w = panel + int64_t(k) * kPanel;
    for (int r = 0; r < mr; ++r) {
      const float a = A[r * lda + k];
      for (int j = 0; j < kPanel; ++j) acc[r][j] += a * w[j];
    }
  }
  for (int r = 0; r < mr; ++r)
    for (int j = 0; j < ncols; ++j) {
      float* c = C + r * ldc + j;
      *c = beta == 0.0f ? acc[r][j] : beta == 1.0f ? acc[r][j] + *c : acc[r][j] + beta * *c;
    }
}

#ifdef LLM_PACKED_GEMM_X86
template <int MR>
__attribute__((target("avx2,fma"))) void tile_avx2(float* C, int64_t ldc, const float* A, int64_t lda,
                                                   const float* panel, int K, int ncols, float beta) {
  __m256 lo[MR], hi[MR];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
  for (int k = 0; k < K; ++k) {
    const __m256 w0 = _mm256_load_ps(panel + int64_t(k) * kPanel);
    const __m256 w1 = _mm256_load_ps(panel + int64_t(k) * kPanel + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256 a = _mm256_broadcast_ss(A + r * lda + k);
      lo[r] = _mm256_fmadd_ps(a, w0, lo[r]);
      hi[r] = _mm256_fmadd_ps(a, w1, hi[r]);
    }
  }
  const __m256 vb = _mm256_set1_ps(beta);
  // Every loop over r fully unrolled: the accumulators then stay in registers (with a rolled loop here GCC
  // spills all twelve to the stack on every k).
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    float* c = C + r * ldc;
    if (ncols == kPanel) {
      if (beta == 0.0f) {
        _mm256_storeu_ps(c, lo[r]);
        _mm256_storeu_ps(c + 8, hi[r]);
      } else if (beta == 1.0f) {
        _mm256_storeu_ps(c, _mm256_add_ps(lo[r], _mm256_loadu_ps(c)));
        _mm256_storeu_ps(c + 8, _mm256_add_ps(hi[r], _mm256_loadu_ps(c + 8)));
      } else {
        _mm256_storeu_ps(c, _mm256_add_ps(lo[r], _mm256_mul_ps(vb, _mm256_loadu_ps(c))));
        _mm256_storeu_ps(c + 8, _mm256_add_ps(hi[r], _mm256_mul_ps(vb, _mm256_loadu_ps(c + 8))));
      }
    } else {  // the last panel of an N that is not a multiple of 16
      alignas(32) float t[kPanel];
      _mm256_store_ps(t, lo[r]);
      _mm256_store_ps(t + 8, hi[r]);
      for (int j = 0; j < ncols; ++j)
        c[j] = beta == 0.0f ? t[j] : beta == 1.0f ? t[j] + c[j] : t[j] + beta * c[j];
    }
  }
}

using TileFn = void (*)(float*, int64_t, const float*, int64_t, const float*, int, int, float);
constexpr TileFn kAvx2Tiles[kMaxRows + 1] = {nullptr,      tile_avx2<1>, tile_avx2<2>, tile_avx2<3>,
                                             tile_avx2<4>, tile_avx2<5>, tile_avx2<6>};

#endif

}  // namespace

PackedWeight::PackedWeight(const float* w, int n, int k) : n_(n), k_(k) {
  if (n <= 0 || k <= 0)
    throw std::invalid_argument("PackedWeight: shape [" + std::to_string(n) + ", " + std::to_string(k) +
                                "] has no elements");
  const size_t floats = size_t(num_panels()) * kPanel * size_t(k);
  void* p = std::aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
  if (!p) throw std::bad_alloc();
  data_.reset(static_cast<float*>(p));
  float* out = data_.get();
  const int panels = num_panels();
#pragma omp parallel for schedule(static) if (floats > (size_t(1) << 20))
  for (int pi = 0; pi < panels; ++pi) {
    float* dst = out + size_t(pi) * kPanel * k;
    for (int kk = 0; kk < k; ++kk)
      for (int j = 0; j < kPanel; ++j) {
        const int row = pi * kPanel + j;
        dst[size_t(kk) * kPanel + j] = row < n ? w[size_t(row) * k + kk] : 0.0f;
      }
  }
}

const char* packed_gemm_isa() { return cpu_has_avx2_fma() ? "avx2+fma" : "generic"; }

void packed_linear(float* C, const float* A, const PackedWeight& W, int M, float beta) {
  if (M <= 0) return;
  const int N = W.n(), K = W.k(), panels = W.num_panels();
  // Rows per pass over the panels: A's chunk stays in the L2 cache beside the panel being read (~512 KiB).
  const int chunk_cap = std::max(kMaxRows, int((size_t(512) << 10) / (sizeof(float) * size_t(K))));
  const int chunks = (M + chunk_cap - 1) / chunk_cap;
  // Below ~2 MFLOP (~0.1 ms on one core) a fork/join costs more than it saves, and far more when the cores
  // are oversubscribed.
  const int64_t flops = int64_t(2) * M * N * K;
  const int team = flops < (int64_t(1) << 21) ? 1 : std::min(omp_get_max_threads(), std::max(1, panels / 4));
  const bool avx2 = cpu_has_avx2_fma();
  (void)avx2;
  // Work items of `grain` consecutive panels (each thread still streams long contiguous runs of W), taken
  // dynamically: on a shared machine a thread that loses its core for a while no longer holds up the other.
  const int grain = std::max(1, panels / (team * 8));
  const int groups = (panels + grain - 1) / grain;
#pragma omp parallel for num_threads(team) schedule(dynamic, 1) if (team > 1)
  for (int item = 0; item < chunks * groups; ++item) {
    const int c = item / groups, p0 = (item % groups) * grain, p1 = std::min(panels, p0 + grain);
    const int m0 = int(int64_t(M) * c / chunks), m1 = int(int64_t(M) * (c + 1) / chunks);
    const int blocks = (m1 - m0 + kMaxRows - 1) / kMaxRows;  // balanced: sizes differ by at most one
    for (int p = p0; p < p1; ++p) {
      const float* panel = W.panel(p);
      const int n0 = p * kPanel, ncols = std::min(kPanel, N - n0);
      for (int b = 0; b < blocks; ++b) {
        const int r0 = m0 + int(int64_t(m1 - m0) * b / blocks), r1 = m0 + int(int64_t(m1 - m0) * (b + 1) / blocks);
        float* Ct = C + int64_t(r0) * N + n0;
        const float* At = A + int64_t(r0) * K;
#ifdef LLM_PACKED_GEMM_X86
        if (avx2) {
          kAvx2Tiles[r1 - r0](Ct, N, At, K, panel, K, ncols, beta);
          continue;
        }
#endif
        tile_generic(Ct, N, At, K, panel, K, r1 - r0, ncols, beta);
      }
    }
  }
}

}  // namespace engine::cpu
