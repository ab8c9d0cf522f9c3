// test-deps: engine_internals
// The packed GEMM against float64 on random inputs (odd N and K, every row-block size, beta 0/1/other), against
// a plain fused-multiply-add loop bit for bit where an FMA kernel (AVX-512 or AVX2) runs, in each kernel the
// machine has; the AVX-512 and AVX2 kernels bit for bit against each other; and batch invariance: a row's
// result is the same bits whatever M and the thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "backend/cpu/packed_gemm.h"

namespace {

using engine::cpu::GemmIsa;
using engine::cpu::packed_gemm_isa;
using engine::cpu::set_packed_gemm_isa;
using engine::cpu::packed_linear;
using engine::cpu::PackedWeight;

std::vector<float> randn(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

bool fma_kernel() {
  const std::string isa = packed_gemm_isa();
  return isa == "avx2+fma" || isa == "avx512f";
}

// Each kernel this machine has, best first (set_packed_gemm_isa falls back below what it lacks).
std::vector<GemmIsa> kernels_here() {
  std::vector<GemmIsa> v;
  for (GemmIsa isa : {GemmIsa::kAvx512, GemmIsa::kAvx2, GemmIsa::kGeneric})
    if (set_packed_gemm_isa(isa) == isa) v.push_back(isa);
  set_packed_gemm_isa(GemmIsa::kAuto);
  return v;
}

// Restores the machine's default kernel when a test that switched it ends (also on a failed assertion).
struct IsaScope {
  explicit IsaScope(GemmIsa isa) { set_packed_gemm_isa(isa); }
  ~IsaScope() { set_packed_gemm_isa(GemmIsa::kAuto); }
};

void check_shape(int M, int N, int K, float beta, uint32_t seed) {
  SCOPED_TRACE("M " + std::to_string(M) + " N " + std::to_string(N) + " K " + std::to_string(K) + " beta " +
               std::to_string(beta));
  std::mt19937 rng(seed);
  const auto A = randn(size_t(M) * K, rng), W = randn(size_t(N) * K, rng), C0 = randn(size_t(M) * N, rng);
  const PackedWeight P(W.data(), N, K);
  ASSERT_EQ(P.n(), N);
  ASSERT_EQ(P.k(), K);
  std::vector<float> C = C0;
  packed_linear(C.data(), A.data(), P, M, beta);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double ref = 0, mag = 0;
      for (int k = 0; k < K; ++k) {
        ref += double(A[size_t(m) * K + k]) * W[size_t(n) * K + k];
        mag += std::fabs(double(A[size_t(m) * K + k]) * W[size_t(n) * K + k]);
      }
      const double c0 = C0[size_t(m) * N + n];
      ref += double(beta) * c0;
      mag += std::fabs(double(beta) * c0);
      const float got = C[size_t(m) * N + n];
      // float32 summation of K products: error bounded by ~K * eps * sum|terms|.
      ASSERT_LE(std::fabs(got - ref), 2.0 * K * 6e-8 * mag + 1e-30) << "row " << m << " column " << n;
      if (fma_kernel()) {
        // The AVX2 kernel: one fused multiply-add per k, in order, then beta's term.
        float acc = 0.0f;
        for (int k = 0; k < K; ++k) acc = std::fma(A[size_t(m) * K + k], W[size_t(n) * K + k], acc);
        const float c = float(c0);
        const float want = beta == 0.0f ? acc : beta == 1.0f ? acc + c : acc + beta * c;
        ASSERT_EQ(std::memcmp(&got, &want, sizeof got), 0) << "row " << m << " column " << n;
      }
    }
}

TEST(PackedGemm, MatchesFloat64OnRandomShapes) {
  for (GemmIsa isa : kernels_here()) {
    IsaScope scope(isa);
    SCOPED_TRACE(packed_gemm_isa());
    uint32_t seed = 1;
    // Every row-block size of both FMA kernels (AVX2: up to 6 rows, AVX-512: 2 to 8), and M past them.
    for (int M : {1, 2, 3, 4, 5, 6, 7, 8, 13, 16, 17, 33, 64})
      for (int N : {16, 37, 344})
        for (int K : {1, 96, 172}) check_shape(M, N, K, 0.0f, seed++);
  }
}

TEST(PackedGemm, AvxKernelsGiveTheSameBits) {
  const auto here = kernels_here();
  if (here.empty() || here.front() != GemmIsa::kAvx512) GTEST_SKIP() << "no AVX-512 on this machine";
  std::mt19937 rng(11);
  for (int M : {1, 5, 8, 16, 23, 64})
    for (int N : {37, 344}) {
      const int K = 300;
      const auto A = randn(size_t(M) * K, rng), W = randn(size_t(N) * K, rng), C0 = randn(size_t(M) * N, rng);
      const PackedWeight P(W.data(), N, K);
      for (float beta : {0.0f, 1.0f, 0.5f}) {
        std::vector<float> c512 = C0, c2 = C0;
        {
          IsaScope scope(GemmIsa::kAvx512);
          packed_linear(c512.data(), A.data(), P, M, beta);
        }
        {
          IsaScope scope(GemmIsa::kAvx2);
          packed_linear(c2.data(), A.data(), P, M, beta);
        }
        ASSERT_EQ(std::memcmp(c512.data(), c2.data(), sizeof(float) * c2.size()), 0)
            << "M " << M << " N " << N << " beta " << beta;
      }
    }
}

TEST(PackedGemm, AddsBetaTimesC) {
  for (GemmIsa isa : kernels_here()) {
    IsaScope scope(isa);
    SCOPED_TRACE(packed_gemm_isa());
    check_shape(9, 48, 65, 1.0f, 100);  // the residual add of the o and down projections
    check_shape(9, 40, 65, 0.5f, 101);
    check_shape(20, 40, 65, 0.5f, 102);
  }
}

TEST(PackedGemm, LargeProductsSplitOverThreadsAndRowChunks) {
  // K = 2048: A's rows are taken in chunks of 64, so 150 rows make three passes over the panels; big enough to
  // run on the thread team.
  check_shape(150, 100, 2048, 1.0f, 200);
}

TEST(PackedGemm, RowsDoNotDependOnBatchSizeOrThreads) {
  std::mt19937 rng(7);
  const int N = 512, K = 2048, M = 37;  // 2 MFLOP a row: big enough for the thread team
  const auto A = randn(size_t(M) * K, rng), W = randn(size_t(N) * K, rng);
  const PackedWeight P(W.data(), N, K);
  std::vector<float> all(size_t(M) * N);
  packed_linear(all.data(), A.data(), P, M, 0.0f);
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    for (int m : {0, 5, 36}) {
      std::vector<float> one(N);
      packed_linear(one.data(), A.data() + size_t(m) * K, P, 1, 0.0f);
      ASSERT_EQ(std::memcmp(one.data(), all.data() + size_t(m) * N, sizeof(float) * N), 0)
          << "row " << m << " alone, " << threads << " threads";
    }
  }
  omp_set_num_threads(saved);
}

TEST(PackedGemm, RejectsAnEmptyShape) {
  const float w = 1.0f;
  EXPECT_THROW(PackedWeight(&w, 0, 1), std::invalid_argument);
  EXPECT_THROW(PackedWeight(&w, 1, 0), std::invalid_argument);
}

}  // namespace
