// test-deps: engine_internals
// The packed GEMM against float64 on random inputs (odd N and K, every row-block size, beta 0/1/other), against
// a plain fused-multiply-add loop bit for bit where the AVX2 kernel runs, and batch invariance: a row's
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

using engine::cpu::packed_gemm_isa;
using engine::cpu::packed_linear;
using engine::cpu::PackedWeight;

std::vector<float> randn(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

bool fma_kernel() { return std::string(packed_gemm_isa()) == "avx2+fma"; }

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
  uint32_t seed = 1;
  for (int M : {1, 2, 3, 4, 5, 6, 7, 8, 13, 64})
    for (int N : {16, 37, 344})
      for (int K : {1, 96, 172}) check_shape(M, N, K, 0.0f, seed++);
}

TEST(PackedGemm, AddsBetaTimesC) {
  check_shape(9, 48, 65, 1.0f, 100);  // the residual add of the o and down projections
  check_shape(9, 40, 65, 0.5f, 101);
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
