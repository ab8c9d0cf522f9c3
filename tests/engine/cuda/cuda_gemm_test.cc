// test-deps: engine_internals
// The GEMMs (skinny, ordered and tuned GEMMs, the TMA + wgmma stream) against float64 on random inputs, and the
// bit-level properties the deterministic mode relies on (a row's result independent of M). The GEMVs are in
// cuda_gemv_test.cc. Skips when no CUDA device is present.
#include <gtest/gtest.h>

#ifdef LLM_HAVE_CUDA
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/gemm_tma.h"
#include "backend/cuda/gemm_tuned.h"
#include "backend/cuda/kernels.h"
#include "support/cuda_test_util.h"

namespace ec = engine::cuda;
using namespace cuda_test;

namespace {

// Every templated kernel runs in both storage types: bf16 (the fast path) against bf16-level bounds, float
// (the f32 reference mode) against ~1e-5, tight enough that only f32 arithmetic is left.

// The skinny GEMM (decode at batch 1..64) against float64: every m-tile count, M not a multiple of 16, f32 and
// bf16 outputs; and a row's result does not depend on M (the same row at M = 3 and M = 64 is bit-identical).
TEST(CudaGemm, SkinnyGemmMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  const int N = 48, K = 352;  // K: 11 chunks of 32, not a multiple of the 8 warps x 4 in flight
  EXPECT_FALSE(ec::skinny_gemm_supported(65, N, K));
  EXPECT_FALSE(ec::skinny_gemm_supported(4, 40, K));
  EXPECT_FALSE(ec::skinny_gemm_supported(4, N, 1000));
  std::mt19937_64 rng(900);
  const auto x = rand_bf16(size_t(64) * K, rng), w = rand_bf16(size_t(N) * K, rng);
  DevBuf<bf16> dx(x), dw(w), dyb(size_t(64) * N);
  DevBuf<float> dyf(size_t(64) * N);
  std::vector<std::vector<float>> row0;
  for (int M : {1, 3, 16, 17, 40, 64}) {
    for (bool f32 : {false, true}) {
      ASSERT_TRUE(ec::skinny_gemm_supported(M, N, K));
      dyb.poison();
      dyf.poison();
      ec::skinny_gemm(dx.p, dw.p, f32 ? static_cast<void*>(dyf.p) : static_cast<void*>(dyb.p), f32, M, N, K, nullptr);
      CK(cudaDeviceSynchronize());
      const std::vector<double> ref = gemm_f64(x, w, M, N, K);
      if (f32) {
        auto y = dyf.download();
        y.resize(size_t(M) * N);
        EXPECT_LT(rel_err(y, ref), 1e-5) << "M " << M;
        row0.emplace_back(y.begin(), y.begin() + N);
      } else {
        auto y = dyb.download();
        y.resize(size_t(M) * N);
        EXPECT_LT(rel_err(y, ref), 5e-3) << "M " << M;
        // Rows past M stay untouched (still NaN).
        const auto all = dyb.download();
        if (M < 64) {
          EXPECT_FALSE(std::isfinite(f(all[size_t(M) * N]))) << "M " << M;
        }
      }
    }
  }
  for (size_t i = 1; i < row0.size(); ++i) EXPECT_EQ(row0[i], row0[0]) << "row 0 changed with M";
}

// The deterministic mode's definition of a GEMM's sums, against float64: M, N and K not multiples of its
// 16 x 8 x 16 step (rows, columns and k past the end), both output types.
TEST(CudaGemm, OrderedGemmMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  for (auto [M, N, K] : {std::tuple{1, 8, 16}, std::tuple{37, 77, 1002}, std::tuple{64, 256, 4096}}) {
    std::mt19937_64 rng(77 + M);
    const auto x = rand_bf16(size_t(M) * K, rng), w = rand_bf16(size_t(N) * K, rng);
    DevBuf<bf16> dx(x), dw(w), dyb(size_t(M) * N + 1);
    DevBuf<float> dyf(size_t(M) * N + 1);
    const std::vector<double> ref = gemm_f64(x, w, M, N, K);
    for (bool f32 : {true, false}) {
      dyf.poison();
      dyb.poison();
      ec::ordered_gemm(dx.p, dw.p, f32 ? static_cast<void*>(dyf.p) : static_cast<void*>(dyb.p), f32, M, N, K, nullptr);
      CK(cudaDeviceSynchronize());
      std::vector<float> y = y_as_floats(f32, dyf, dyb);
      EXPECT_FALSE(std::isfinite(y.back())) << "wrote past M x N";
      y.pop_back();
      EXPECT_LT(rel_err(y, ref), f32 ? 1e-5 : 5e-3) << "M " << M << " N " << N << " K " << K << (f32 ? " f32" : " bf16");
    }
  }
}

// The deterministic mode's GEMM: every row bit-identical to ordered_gemm's at every M (so to the same row
// computed among 2,012, a mixed prefill step), in both output types and at two weight shapes, with every row
// bucket prepared first as the backend does; and a bucket not prepared is refused while a graph is captured.
TEST(CudaGemm, OrderedTunedGemmRowsDoNotDependOnM) {
  SKIP_WITHOUT_DEVICE();
  constexpr int kMaxM = 2012;
  ec::TunedGemm gemm(nullptr, ec::TunedGemm::Policy::kOrdered);
  for (auto [N, K] : {std::pair{512, 1024}, std::pair{256, 4096}}) {
    std::mt19937_64 rng(1000 + N);
    const auto x = rand_bf16(size_t(kMaxM) * K, rng), w = rand_bf16(size_t(N) * K, rng);
    DevBuf<bf16> dx(x), dw(w), dyb(size_t(kMaxM) * N), drb(size_t(kMaxM) * N);
    DevBuf<float> dyf(size_t(kMaxM) * N), drf(size_t(kMaxM) * N);
    for (bool f32 : {true, false}) {
      gemm.prepare({dw.p}, N, K, f32, kMaxM);
      void* dy = f32 ? static_cast<void*>(dyf.p) : static_cast<void*>(dyb.p);
      void* dr = f32 ? static_cast<void*>(drf.p) : static_cast<void*>(drb.p);
      ec::ordered_gemm(dx.p, dw.p, dr, f32, kMaxM, N, K, nullptr);
      CK(cudaDeviceSynchronize());
      const std::vector<float> all = y_as_floats(f32, drf, drb);
      for (int M : {1, 2, 3, 16, 64, 127, 128, 129, 256, 1000, kMaxM}) {
        dyf.poison();
        dyb.poison();
        gemm.run(dx.p, dw.p, dy, f32, M, N, K);
        CK(cudaDeviceSynchronize());
        const std::vector<float> y = y_as_floats(f32, dyf, dyb);
        size_t differ = 0;
        for (size_t i = 0; i < size_t(M) * N; ++i) differ += std::memcmp(&y[i], &all[i], sizeof(float)) != 0;
        EXPECT_EQ(differ, 0u) << "M " << M << " N " << N << " K " << K << (f32 ? " f32" : " bf16")
                              << ": elements that differ from ordered_gemm's";
        if (M < kMaxM) {
          EXPECT_FALSE(std::isfinite(y[size_t(M) * N])) << "M " << M << ": rows past M written";
        }
      }
    }
  }
  std::printf("TunedGemm (ordered) chose:\n%s", gemm.describe().c_str());
  // A shape never prepared, during capture: a clear refusal, not a capture broken by the check's waits.
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  {
    ec::TunedGemm fresh(s, ec::TunedGemm::Policy::kOrdered);
    DevBuf<bf16> x(64 * 64), w(64 * 64), y(64 * 64);
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    EXPECT_THROW(fresh.run(x.p, w.p, y.p, false, 4, 64, 64), std::logic_error);
    cudaGraph_t g = nullptr;
    cudaStreamEndCapture(s, &g);
    if (g) cudaGraphDestroy(g);
  }
  cudaStreamDestroy(s);
}

// The default mode's GEMM (any algorithm, split-K included, the fastest per row bucket): against float64 at
// row counts across the buckets, both output types; rows past M untouched.
TEST(CudaGemm, FastestTunedGemmMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  constexpr int kMaxM = 600;
  ec::TunedGemm gemm(nullptr, ec::TunedGemm::Policy::kFastest);
  for (auto [N, K] : {std::pair{512, 1024}, std::pair{256, 4096}}) {
    std::mt19937_64 rng(2000 + N);
    const auto x = rand_bf16(size_t(kMaxM) * K, rng), w = rand_bf16(size_t(N) * K, rng);
    DevBuf<bf16> dx(x), dw(w), dyb(size_t(kMaxM) * N + N);
    DevBuf<float> dyf(size_t(kMaxM) * N + N);
    for (bool f32 : {true, false}) {
      gemm.prepare({dw.p}, N, K, f32, kMaxM);
      for (int M : {1, 3, 16, 100, kMaxM}) {
        dyf.poison();
        dyb.poison();
        gemm.run(dx.p, dw.p, f32 ? static_cast<void*>(dyf.p) : static_cast<void*>(dyb.p), f32, M, N, K);
        CK(cudaDeviceSynchronize());
        std::vector<float> y = y_as_floats(f32, dyf, dyb);
        EXPECT_FALSE(std::isfinite(y[size_t(M) * N])) << "M " << M << ": rows past M written";
        y.resize(size_t(M) * N);
        const std::vector<double> ref = gemm_f64(x, w, M, N, K);
        EXPECT_LT(rel_err(y, ref), f32 ? 1e-5 : 5e-3) << "M " << M << " N " << N << " K " << K << (f32 ? " f32" : " bf16");
      }
    }
  }
  std::printf("TunedGemm (fastest) chose:\n%s", gemm.describe().c_str());
}

// One M of GemmTmaMatchesFloat64 in output type T: run 0 within `bound` of float64, runs 1 and 2 its bits, run 3
// (one accumulator set) within the bound, rows past M untouched (poisoned), and at M <= 8 row 0 the bits of the
// row alone (M = 1, kept in `alone`). Returns the worse of the two errors.
template <typename T>
double check_tma_runs(const std::vector<T> (&runs)[4], const std::vector<double>& ref_m, int M, int N, int kM,
                      double bound, std::vector<T>& alone, const std::string& what) {
  const auto& g = runs[0];
  const size_t n = size_t(M) * N;
  const double err = rel_err(std::vector<T>(g.begin(), g.begin() + n), ref_m);
  const double err1 = rel_err(std::vector<T>(runs[3].begin(), runs[3].begin() + n), ref_m);
  EXPECT_LT(err, bound) << what;
  EXPECT_FALSE(std::isnan(err)) << what;
  EXPECT_LT(err1, bound) << what << " one accumulator set";
  EXPECT_EQ(std::memcmp(g.data(), runs[1].data(), sizeof(T) * g.size()), 0) << what << ": two runs (16 / 3 stages) differ";
  EXPECT_EQ(std::memcmp(g.data(), runs[2].data(), sizeof(T) * g.size()), 0) << what << ": pipelined or not differ";
  if (M < kM) {
    EXPECT_TRUE(std::isnan(f(g[n])) && std::isnan(f(g.back()))) << what << ": rows past M written";
  }
  if (M == 1) alone.assign(g.begin(), g.begin() + N);
  if (M <= 8) {
    EXPECT_EQ(std::memcmp(g.data(), alone.data(), sizeof(T) * N), 0) << what << ": row 0 differs from alone";
  }
  return std::max(err, err1);
}

// gemm_tma (Hopper: TMA + wgmma) against float64. Shapes: N below one tile and not a multiple of 64, K not a
// multiple of the 64-k chunk (the TMA's zero fill past K), fewer units than SMs (a tile cut into one-unit
// pieces over many blocks), tiles cut between two and three blocks (K = 11008), the 7B shapes; M at both
// sides of every padding step (8, 16, 32, 64). Every output is checked, rows past M stay as they were, a
// second run gives the same bits (the tile counters are back at zero), so does the unpipelined consumer, and at M <= 8 each row is the same
// bits as the row alone (the same n8 instruction; the cut does not depend on M).
TEST(CudaGemm, GemmTmaMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  {
    DevBuf<bf16> probe(size_t(64));
    if (!ec::gemm_tma_supported(1, 64, 64, probe.p, probe.p)) GTEST_SKIP() << "gemm_tma needs an sm_90 device";
    EXPECT_FALSE(ec::gemm_tma_supported(ec::kTmaMaxM + 1, 64, 64, probe.p, probe.p));
    EXPECT_FALSE(ec::gemm_tma_supported(4, 64, 1001, probe.p, probe.p));
    EXPECT_FALSE(ec::gemm_tma_supported(4, 64, 64, probe.p + 1, probe.p));
  }
  ec::TmaScratch scratch;
  struct Case { int N, K, max_m; };
  const std::vector<Case> cases = {{77, 1000, 64},   {3001, 1000, 64},  {64, 64, 64},     {4096, 4096, 33},
                                   {4096, 11008, 17}, {12288, 4096, 16}, {32000, 4096, 9}};
  const std::vector<int> ms = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64};
  double worst_b = 0, worst_f = 0;
  for (const auto& c : cases) {
    const int N = c.N, K = c.K, kM = c.max_m;
    std::mt19937_64 rng(12000 + N + K);
    const auto x = rand_bf16(size_t(kM) * K, rng), w = rand_bf16(size_t(N) * K, rng);
    const std::vector<double> ref = gemm_f64(x, w, kM, N, K);
    DevBuf<bf16> dx(x), dw(w), dyb(size_t(kM) * N);
    DevBuf<float> dyf(size_t(kM) * N);
    for (bool f32 : {false, true}) {
      void* y = f32 ? static_cast<void*>(dyf.p) : static_cast<void*>(dyb.p);
      std::vector<float> alone_f;
      std::vector<bf16> alone_b;
      for (int M : ms) {
        if (M > kM) continue;
        const std::string what =
            "M " + std::to_string(M) + " N " + std::to_string(N) + " K " + std::to_string(K) + (f32 ? " f32" : " bf16");
        // Runs 0 and 1 pipelined with shared tiles first (the defaults; run 1 with a ring of 3 stages), run 2
        // the first version's consumer with each block's units in order and 2 stages (the same bits), run 3
        // one accumulator set (another order).
        std::vector<float> got_f[4];
        std::vector<bf16> got_b[4];
        for (int run = 0; run < 4; ++run) {
          dyb.poison();
          dyf.poison();
          ec::GemmTmaTuning t;
          t.pipelined = t.partials_first = run != 2;
          t.accumulator_sets = run == 3 ? 1 : 4;
          t.stages = run == 1 ? 3 : run == 2 ? 2 : 0;  // small rings wrap many times: the same bits
          ec::set_gemm_tma_tuning(t);
          ec::gemm_tma(dx.p, dw.p, y, f32, M, N, K, scratch, nullptr);
          CK(cudaDeviceSynchronize());
          CK(cudaGetLastError());
          if (f32) got_f[run] = dyf.download();
          else got_b[run] = dyb.download();
        }
        const std::vector<double> ref_m(ref.begin(), ref.begin() + size_t(M) * N);
        if (f32) worst_f = std::max(worst_f, check_tma_runs(got_f, ref_m, M, N, kM, 1e-5, alone_f, what));
        else worst_b = std::max(worst_b, check_tma_runs(got_b, ref_m, M, N, kM, 5e-3, alone_b, what));
      }
    }
  }
  ec::set_gemm_tma_tuning(ec::GemmTmaTuning{});
  std::printf("gemm_tma vs float64, worst relative error over all M and shapes: bf16 out %.3g, f32 out %.3g\n",
              worst_b, worst_f);
}

// gemm_tma with its per-block timestamps on (the measurement cuda_gemm_bench's BM_GemmTmaPhases reads): the
// same bits as without them, the same descriptors prefetched or not, and every block's stamps in the order the
// kernel passes them (entry, first loads issued, first stage landed, last load issued, done).
TEST(CudaGemm, GemmTmaPhasesKeepTheBitsAndComeInOrder) {
  SKIP_WITHOUT_DEVICE();
  {
    DevBuf<bf16> probe(size_t(64));
    if (!ec::gemm_tma_supported(1, 64, 64, probe.p, probe.p)) GTEST_SKIP() << "gemm_tma needs an sm_90 device";
  }
  const int M = 16, N = 4096, K = 11008;
  std::mt19937_64 rng(4242);
  const auto x = rand_bf16(size_t(M) * K, rng), w = rand_bf16(size_t(N) * K, rng);
  DevBuf<bf16> dx(x), dw(w), dy(size_t(M) * N);
  ec::TmaScratch scratch;
  const int sms = ec::device_sm_count();
  DevBuf<unsigned long long> ph(size_t(sms) * ec::kTmaPhaseSlots);
  std::vector<bf16> got[3];
  for (int run = 0; run < 3; ++run) {
    ec::GemmTmaTuning t;
    t.prefetch_descriptors = run == 2;
    ec::set_gemm_tma_tuning(t);
    scratch.record_phases(run == 0 ? nullptr : ph.p);
    dy.poison();
    ec::gemm_tma(dx.p, dw.p, dy.p, false, M, N, K, scratch, nullptr);
    CK(cudaDeviceSynchronize());
    CK(cudaGetLastError());
    got[run] = dy.download();
  }
  scratch.record_phases(nullptr);
  ec::set_gemm_tma_tuning(ec::GemmTmaTuning{});
  EXPECT_EQ(std::memcmp(got[0].data(), got[1].data(), got[0].size() * sizeof(bf16)), 0) << "phases on";
  EXPECT_EQ(std::memcmp(got[0].data(), got[2].data(), got[0].size() * sizeof(bf16)), 0) << "descriptors prefetched";
  const std::vector<unsigned long long> p = ph.download();
  const int G = std::min(sms, (N / 64) * ((K + 63) / 64));
  for (int b = 0; b < G; ++b) {
    const unsigned long long* q = p.data() + size_t(b) * ec::kTmaPhaseSlots;
    EXPECT_GT(q[0], 0u) << "block " << b;
    EXPECT_LE(q[1], q[2]) << "block " << b;
    EXPECT_LE(q[2], q[3]) << "block " << b;
    EXPECT_LE(q[3], q[4]) << "block " << b;
    EXPECT_LE(q[4], q[5]) << "block " << b;
    EXPECT_LE(q[0], q[6]) << "block " << b;
  }
}

}  // namespace

#else
TEST(CudaGemm, SkippedWithoutCudaBuild) { GTEST_SKIP() << "built without LLM_ENABLE_CUDA"; }
#endif
