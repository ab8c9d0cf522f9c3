// The CPU backend's GEMM at the llama-100m shapes: the packed kernel (backend/cpu/packed_gemm) against
// OpenBLAS sgemm/sgemv as the backend called it before (W [N, K] in place, N split over the OpenMP team, one
// single-threaded OpenBLAS call per thread). items_per_second = FLOP/s (2 M N K per call).
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <random>
#include <vector>

#include "backend/cpu/packed_gemm.h"

namespace {

struct Shape {
  int n, k;
};
// qkv (12 heads x 64, q+k+v), o, gate+up, down, lm_head
constexpr Shape kShapes[] = {{2304, 768}, {768, 768}, {4096, 768}, {768, 2048}, {32000, 768}};

std::vector<float> random_vec(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.02f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

void openblas_linear(float* C, const float* A, const float* W, int M, int N, int K) {
  const int team = std::min(omp_get_max_threads(), std::max(1, N / 64));
#pragma omp parallel num_threads(team)
  {
    const int nt = omp_get_num_threads(), id = omp_get_thread_num();
    const int groups = (N + 15) / 16;
    const int n0 = std::min(N, int(int64_t(groups) * id / nt) * 16), n1 = std::min(N, int(int64_t(groups) * (id + 1) / nt) * 16);
    if (n1 > n0 && M == 1)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, n1 - n0, K, 1.0f, W + int64_t(n0) * K, K, A, 1, 0.0f, C + n0, 1);
    else if (n1 > n0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, n1 - n0, K, 1.0f, A, K, W + int64_t(n0) * K, K, 0.0f,
                  C + n0, N);
  }
}

void BM_Gemm(benchmark::State& state, bool packed) {
  const int M = int(state.range(0));
  const Shape s = kShapes[state.range(1)];
  openblas_set_num_threads(1);
  const auto W = random_vec(size_t(s.n) * s.k, 1), A = random_vec(size_t(M) * s.k, 2);
  std::vector<float> C(size_t(M) * s.n);
  const engine::cpu::PackedWeight P(W.data(), s.n, s.k);
  for (auto _ : state) {
    if (packed)
      engine::cpu::packed_linear(C.data(), A.data(), P, M, 0.0f);
    else
      openblas_linear(C.data(), A.data(), W.data(), M, s.n, s.k);
    benchmark::DoNotOptimize(C.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * int64_t(2) * M * s.n * s.k);
  state.counters["N"] = s.n;
  state.counters["K"] = s.k;
}

void Args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "shape"});
  for (int m : {1, 8, 32, 64, 256})
    for (int sh = 0; sh < 5; ++sh) b->Args({m, sh});
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK_CAPTURE(BM_Gemm, packed, true)->Apply(Args);
BENCHMARK_CAPTURE(BM_Gemm, openblas, false)->Apply(Args);

}  // namespace

BENCHMARK_MAIN();
