// See packed_gemm.h. The AVX-512 and AVX2 kernels are compiled for their targets only (function attributes) and
// chosen at run time, so the build needs no -march flag and still runs on a machine without them.
#include "backend/cpu/packed_gemm.h"

#include "backend/cpu/cpu_kernels.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
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
constexpr int kMaxRows = 6;  // AVX2 rows per register tile: 6 x 2 accumulators + 2 weights + 1 broadcast of 16 ymm
// AVX-512: a panel row is one zmm, so a tile of 8 rows is 8 accumulators + the weights + a broadcast, and a
// batch of 8 streams each panel from memory once (AVX2: twice, in blocks of 4). Measured on the 2-core AMD EPYC
// (Zen 4) box, cpu_gemm_bench: 8 rows beat 6 and 12 (16 was slower again at K = 2,048: 16 row streams of A).
// A one-row block keeps the AVX2 kernel, which streams the panel faster there (two accumulators per k).
constexpr int kMaxRows512 = 8;

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

// The same sums as tile_avx2 (one fused multiply-add per k, in order, into one accumulator per element; beta's
// term after), so the two give the same bits and the choice of kernel cannot change a result.
template <int MR>
__attribute__((target("avx512f"))) void tile_avx512(float* C, int64_t ldc, const float* A, int64_t lda,
                                                    const float* panel, int K, int ncols, float beta) {
  __m512 acc[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r] = _mm512_setzero_ps();
  for (int k = 0; k < K; ++k) {
    const __m512 w = _mm512_load_ps(panel + int64_t(k) * kPanel);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(A[r * lda + k]), w, acc[r]);
  }
  const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* c = C + r * ldc;
    if (ncols == kPanel) {
      if (beta == 0.0f) _mm512_storeu_ps(c, acc[r]);
      else if (beta == 1.0f) _mm512_storeu_ps(c, _mm512_add_ps(acc[r], _mm512_loadu_ps(c)));
      else _mm512_storeu_ps(c, _mm512_add_ps(acc[r], _mm512_mul_ps(vb, _mm512_loadu_ps(c))));
    } else {  // the last panel of an N that is not a multiple of 16: as tile_avx2 does it
      alignas(64) float t[kPanel];
      _mm512_store_ps(t, acc[r]);
      for (int j = 0; j < ncols; ++j)
        c[j] = beta == 0.0f ? t[j] : beta == 1.0f ? t[j] + c[j] : t[j] + beta * c[j];
    }
  }
}

constexpr TileFn kAvx512Tiles[kMaxRows512 + 1] = {nullptr,        tile_avx512<1>, tile_avx512<2>,
                                                  tile_avx512<3>, tile_avx512<4>, tile_avx512<5>,
                                                  tile_avx512<6>, tile_avx512<7>, tile_avx512<8>};

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

namespace {

// What this machine offers, capped by LLM_CPU_GEMM_ISA (read once) and then by set_packed_gemm_isa().
GemmIsa best_isa() {
#ifdef LLM_PACKED_GEMM_X86
  if (cpu_has_avx512f()) return GemmIsa::kAvx512;
  if (cpu_has_avx2_fma()) return GemmIsa::kAvx2;
#endif
  return GemmIsa::kGeneric;
}

GemmIsa env_isa() {
  const GemmIsa best = best_isa();
  const char* e = std::getenv("LLM_CPU_GEMM_ISA");
  if (!e || !*e) return best;
  const std::string v = e;
  const GemmIsa want = v == "avx512" ? GemmIsa::kAvx512 : v == "avx2" ? GemmIsa::kAvx2 : v == "generic" ? GemmIsa::kGeneric
                                                                                                      : best;
  return std::min(want, best);
}

std::atomic<GemmIsa>& current_isa() {
  static std::atomic<GemmIsa> isa{env_isa()};
  return isa;
}

}  // namespace

GemmIsa set_packed_gemm_isa(GemmIsa want) {
  const GemmIsa isa = want == GemmIsa::kAuto ? env_isa() : std::min(want, best_isa());
  current_isa().store(isa);
  return isa;
}

const char* packed_gemm_isa() {
  switch (current_isa().load()) {
    case GemmIsa::kAvx512: return "avx512f";
    case GemmIsa::kAvx2: return "avx2+fma";
    default: return "generic";
  }
}

void packed_linear(float* C, const float* A, const PackedWeight& W, int M, float beta) {
  if (M <= 0) return;
  const int N = W.n(), K = W.k(), panels = W.num_panels();
  const GemmIsa isa = current_isa().load();
  const int max_rows = isa == GemmIsa::kAvx512 ? kMaxRows512 : kMaxRows;
  // Rows per pass over the panels: A's chunk stays in the L2 cache beside the panel being read (~512 KiB).
  const int chunk_cap = std::max(max_rows, int((size_t(512) << 10) / (sizeof(float) * size_t(K))));
  const int chunks = (M + chunk_cap - 1) / chunk_cap;
  // Below ~2 MFLOP (~0.1 ms on one core) a fork/join costs more than it saves, and far more when the cores
  // are oversubscribed.
  const int64_t flops = int64_t(2) * M * N * K;
  const int team = flops < (int64_t(1) << 21) ? 1 : std::min(omp_get_max_threads(), std::max(1, panels / 4));
  // Work items of `grain` consecutive panels (each thread still streams long contiguous runs of W), taken
  // dynamically: on a shared machine a thread that loses its core for a while no longer holds up the other.
  const int grain = std::max(1, panels / (team * 8));
  const int groups = (panels + grain - 1) / grain;
#pragma omp parallel for num_threads(team) schedule(dynamic, 1) if (team > 1)
  for (int item = 0; item < chunks * groups; ++item) {
    const int c = item / groups, p0 = (item % groups) * grain, p1 = std::min(panels, p0 + grain);
    const int m0 = int(int64_t(M) * c / chunks), m1 = int(int64_t(M) * (c + 1) / chunks);
    const int blocks = (m1 - m0 + max_rows - 1) / max_rows;  // balanced: sizes differ by at most one
    for (int p = p0; p < p1; ++p) {
      const float* panel = W.panel(p);
      const int n0 = p * kPanel, ncols = std::min(kPanel, N - n0);
      for (int b = 0; b < blocks; ++b) {
        const int r0 = m0 + int(int64_t(m1 - m0) * b / blocks), r1 = m0 + int(int64_t(m1 - m0) * (b + 1) / blocks);
        float* Ct = C + int64_t(r0) * N + n0;
        const float* At = A + int64_t(r0) * K;
#ifdef LLM_PACKED_GEMM_X86
        if (isa == GemmIsa::kAvx512 && r1 - r0 > 1) {
          kAvx512Tiles[r1 - r0](Ct, N, At, K, panel, K, ncols, beta);
          continue;
        }
        if (isa != GemmIsa::kGeneric) {  // AVX2, or a one-row block under AVX-512
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
