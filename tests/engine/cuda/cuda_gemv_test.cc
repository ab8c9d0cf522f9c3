// test-deps: engine_internals
// The GEMVs (the one-row and unit-layout GEMVs at M = 1..8, the tensor-core GEMV, the fused SwiGLU / RMSNorm
// GEMVs, the deterministic mode's ordered GEMVs, the L2 prefetch, the bulk prefix and the preloading O GEMV)
// against float64 on random inputs or bit for bit against the kernels they stand for. Skips when no CUDA device
// is present.
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
#include <vector>

#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/kernels.h"
#include "support/cuda_test_util.h"

namespace ec = engine::cuda;
using namespace cuda_test;

namespace {

// The deterministic mode's one-row GEMVs: bit for bit ordered_gemm's row (so every other M's, through
// OrderedTunedGemmRowsDoNotDependOnM), the fused forms bit for bit the kernels they replace followed by
// ordered_gemm, in both output types; nothing written past N. Shapes: the smallest (one group of 8 rows, one
// 64-k stage), the 7B shapes (O, QKV, gate/up, down) and lm_head's, whose 4,000 groups leave some warps one
// group fewer than others. Weights filled on the device (the lm_head matrix is 131 M values).
TEST(CudaGemv, OrderedGemvRowsAreOrderedGemmsBits) {
  SKIP_WITHOUT_DEVICE();
  const float eps = 1e-5f;
  for (auto [N, K] : {std::pair{8, 64}, std::pair{264, 704}, std::pair{4096, 4096}, std::pair{12288, 4096},
                      std::pair{22016, 4096}, std::pair{4096, 11008}, std::pair{32000, 4096}}) {
    ASSERT_TRUE(ec::ordered_gemv_supported(N, K, K <= 8192));
    std::mt19937_64 rng(5000 + N + K);
    DevBuf<bf16> dw(size_t(N) * K);
    ec::fill_random_bf16(dw.p, dw.n, 11 + N, 1.f, nullptr);
    const auto x = rand_bf16(K, rng), gu = rand_bf16(size_t(2) * K, rng, 4.f);
    const auto x0 = rand_f32(K, rng, -3, 3), delta = rand_f32(K, rng, -2, 2), nw = rand_f32(K, rng, 0.5f, 1.5f);
    DevBuf<bf16> dx(x), dgu(gu), dact(K), dh(K), dyb(N + 8), drb(N + 8);
    DevBuf<float> dyf(N + 8), drf(N + 8), dx0(x0), dx2(x0), dd(delta), dnw(nw), dxo(K);
    for (bool f32 : {true, false}) {
      void* y = f32 ? static_cast<void*>(dyf.p) : static_cast<void*>(dyb.p);
      void* r = f32 ? static_cast<void*>(drf.p) : static_cast<void*>(drb.p);
      // The reference row of each form, then the GEMV in every stream shape against it.
      for (int form = 0; form < 3; ++form) {
        if (form == 2 && K > 8192) continue;
        if (form == 0) ec::ordered_gemm(dx.p, dw.p, r, f32, 1, N, K, nullptr);
        if (form == 1) {
          ec::swiglu(dgu.p, dact.p, 1, K, nullptr);
          ec::ordered_gemm(dact.p, dw.p, r, f32, 1, N, K, nullptr);
        }
        if (form == 2) {
          dx2.upload(x0);
          ec::add_rmsnorm(dx2.p, dd.p, dnw.p, dh.p, nullptr, 1, K, eps, true, nullptr);
          ec::ordered_gemm(dh.p, dw.p, r, f32, 1, N, K, nullptr);
        }
        CK(cudaDeviceSynchronize());
        const std::vector<float> want = y_as_floats(f32, drf, drb);
        for (int shape = 0; shape < ec::kOrderedGemvShapes; ++shape) {
          ec::set_ordered_gemv_shape(shape);
          dyb.poison();
          dyf.poison();
          dxo.poison();
          if (form == 0) ec::ordered_gemv(dx.p, dw.p, y, f32, N, K, nullptr);
          if (form == 1) ec::ordered_gemv_swiglu(dgu.p, dw.p, y, f32, N, K, nullptr);
          if (form == 2) ec::ordered_gemv_rmsnorm(dx0.p, dd.p, dnw.p, eps, dxo.p, dw.p, y, f32, N, K, nullptr);
          CK(cudaDeviceSynchronize());
          CK(cudaGetLastError());
          const std::vector<float> got = y_as_floats(f32, dyf, dyb);
          size_t differ = 0;
          for (int n = 0; n < N; ++n) differ += std::memcmp(&got[n], &want[n], sizeof(float)) != 0;
          const std::string what = "N " + std::to_string(N) + " K " + std::to_string(K) + (f32 ? " f32" : " bf16") +
                                   (form == 0 ? " plain" : form == 1 ? " swiglu" : " rmsnorm") + " shape " +
                                   std::to_string(shape);
          EXPECT_EQ(differ, 0u) << what << ": elements unlike ordered_gemm's";
          EXPECT_FALSE(std::isfinite(got[N])) << what << ": wrote past N";
          if (form == 2) {
            EXPECT_EQ(dxo.download(), dx2.download()) << what << ": the updated residual";
            EXPECT_EQ(dx0.download(), x0) << what << ": x_in must stay as it was";
          }
        }
      }
    }
  }
  ec::set_ordered_gemv_shape(4);
  EXPECT_FALSE(ec::ordered_gemv_supported(12, 64, false));
  EXPECT_FALSE(ec::ordered_gemv_supported(8, 96, false));
  EXPECT_FALSE(ec::ordered_gemv_supported(8, 8256, true));
  EXPECT_THROW(ec::ordered_gemv(nullptr, nullptr, nullptr, true, 12, 64, nullptr), std::invalid_argument);
}

TEST(CudaGemv, GemvMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  // N odd; K a multiple of 8 but not of a warp's 256-element stride (partial last iteration).
  const int N = 77, K = 1000;
  for (int M = 1; M <= ec::kGemvMaxM; ++M) {
    for (bool f32 : {false, true}) {
      std::mt19937_64 rng(100 + M * 2 + f32);
      ASSERT_TRUE(ec::gemv_supported(M, K));
      const auto x = rand_bf16(size_t(M) * K, rng), w = rand_bf16(size_t(N) * K, rng);
      DevBuf<bf16> dx(x), dw(w), dyb(size_t(M) * N);
      DevBuf<float> dyf(size_t(M) * N);
      dyb.poison();
      dyf.poison();
      ec::gemv(dx.p, dw.p, f32 ? static_cast<void*>(dyf.p) : static_cast<void*>(dyb.p), f32, M, N, K, nullptr);
      CK(cudaDeviceSynchronize());
      const std::vector<double> ref = gemm_f64(x, w, M, N, K);
      if (f32) EXPECT_LT(rel_err(dyf.download(), ref), 1e-5) << "M " << M;
      else EXPECT_LT(rel_err(dyb.download(), ref), 5e-3) << "M " << M;
    }
  }
  EXPECT_FALSE(ec::gemv_supported(ec::kGemvMaxM + 1, K));
  EXPECT_FALSE(ec::gemv_supported(1, 1001));
}

// gemv_units (the fused kernels' layout for a plain x) against float64: N below and above the SM count, K with
// a partial last unit, and the lm_head shape (many rows per block).
TEST(CudaGemv, GemvUnitsMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  for (auto [N, K] : {std::pair{77, 1000}, std::pair{3001, 4096}, std::pair{32000, 4096}}) {
    for (bool f32 : {false, true}) {
      std::mt19937_64 rng(300 + N + f32);
      ASSERT_TRUE(ec::gemv_fused_supported(N, K, false));
      const auto x = rand_bf16(K, rng), w = rand_bf16(size_t(N) * K, rng);
      DevBuf<bf16> dx(x), dw(w), dyb(N);
      DevBuf<float> dyf(N);
      dyb.poison();
      dyf.poison();
      ec::gemv_units(dx.p, dw.p, f32 ? static_cast<void*>(dyf.p) : static_cast<void*>(dyb.p), f32, 1, N, K, nullptr);
      CK(cudaDeviceSynchronize());
      CK(cudaGetLastError());
      const std::vector<double> ref = gemm_f64(x, w, 1, N, K);
      if (f32) EXPECT_LT(rel_err(dyf.download(), ref), 1e-5) << "N " << N << " K " << K;
      else EXPECT_LT(rel_err(dyb.download(), ref), 5e-3) << "N " << N << " K " << K;
    }
  }
}

// gemv_units at M = 2..8 (v12): every row of x against float64, and bit for bit against the same row run
// alone at M = 1 (the same units and order of sums, so a row's result does not depend on M). Shapes: N below
// the SM count, N odd with several rows per block and a partial last unit (K 1000), K 4096; at M = 4 and 8 the
// 7B down shape (K 11008: M = 8 needs 172 KB of x in shared memory) and the lm_head shape (N 32000).
TEST(CudaGemv, GemvUnitsSmallMMatchesFloat64AndOneRow) {
  SKIP_WITHOUT_DEVICE();
  for (int M = 2; M <= ec::kUnitsMaxM; ++M) {
    std::vector<std::pair<int, int>> shapes = {{77, 1000}, {3001, 1000}, {1000, 4096}};
    if (M == 4 || M == 8) shapes.insert(shapes.end(), {{4096, 11008}, {32000, 4096}});
    for (auto [N, K] : shapes) {
      std::mt19937_64 rng(7000 + 13 * M + N + K);
      ASSERT_TRUE(ec::gemv_units_supported(M, N, K)) << "M " << M << " N " << N << " K " << K;
      const auto x = rand_bf16(size_t(M) * K, rng), w = rand_bf16(size_t(N) * K, rng);
      std::vector<double> xd(x.size()), wd(w.size()), ref(size_t(M) * N);
      for (size_t i = 0; i < x.size(); ++i) xd[i] = f(x[i]);
      for (size_t i = 0; i < w.size(); ++i) wd[i] = f(w[i]);
      for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
          double acc = 0;
          const double* xr = xd.data() + size_t(m) * K;
          const double* wr = wd.data() + size_t(n) * K;
          for (int k = 0; k < K; ++k) acc += xr[k] * wr[k];
          ref[size_t(m) * N + n] = acc;
        }
      DevBuf<bf16> dx(x), dw(w), dyb(size_t(M) * N), dyb1(N);
      DevBuf<float> dyf(size_t(M) * N), dyf1(N);
      for (bool f32 : {false, true}) {
        const std::string what =
            "M " + std::to_string(M) + " N " + std::to_string(N) + " K " + std::to_string(K) + (f32 ? " f32" : " bf16");
        dyb.poison();
        dyf.poison();
        ec::gemv_units(dx.p, dw.p, f32 ? static_cast<void*>(dyf.p) : static_cast<void*>(dyb.p), f32, M, N, K, nullptr);
        CK(cudaDeviceSynchronize());
        CK(cudaGetLastError());
        if (f32) EXPECT_LT(rel_err(dyf.download(), ref), 1e-5) << what;
        else EXPECT_LT(rel_err(dyb.download(), ref), 5e-3) << what;
        const auto got_b = dyb.download();
        const auto got_f = dyf.download();
        for (int m = 0; m < M; ++m) {
          // The same row alone (x + m * K is 16-byte aligned: K % 8 == 0).
          dyb1.poison();
          dyf1.poison();
          ec::gemv_units(dx.p + size_t(m) * K, dw.p, f32 ? static_cast<void*>(dyf1.p) : static_cast<void*>(dyb1.p),
                         f32, 1, N, K, nullptr);
          CK(cudaDeviceSynchronize());
          CK(cudaGetLastError());
          bool same = true;
          if (f32) {
            const auto one = dyf1.download();
            for (int n = 0; n < N; ++n) same = same && std::memcmp(&got_f[size_t(m) * N + n], &one[n], 4) == 0;
          } else {
            const auto one = dyb1.download();
            for (int n = 0; n < N; ++n) same = same && std::memcmp(&got_b[size_t(m) * N + n], &one[n], 2) == 0;
          }
          EXPECT_TRUE(same) << what << " row " << m << ": differs from the row alone";
        }
      }
    }
  }
  EXPECT_FALSE(ec::gemv_units_supported(9, 64, 1024));
  EXPECT_FALSE(ec::gemv_units_supported(2, 64, 1001));
}

// gemv_mma (v13: the unit layout on the tensor cores) at every M = 1..16 against float64 (x and w random in
// +-1, outputs poisoned; rows past M must stay poisoned), and every row bit for bit against the same row run
// alone at M = 1. Shapes: N below the SM count (one row a block, 15 of 16 tile rows empty), N odd with
// partial tiles, K with a partial 32-k chunk (1000), the 7B shapes (QKV-like 11008 x 4096 i.e. gate/up-like
// rows, down 4096 x 11008, O 4096 x 4096, lm_head 32000 x 4096). At K = 11008 x in shared memory fits up to
// M = 9; beyond, the kernel reads x through L1: both paths are covered, and with set_gemv_mma_x_shared(false)
// the L1 path at two shapes; the first version's single-set pipeline (set_gemv_mma_pingpong(false)) at two.
TEST(CudaGemv, GemvMmaMatchesFloat64AndOneRow) {
  SKIP_WITHOUT_DEVICE();
  constexpr int kM = ec::kMmaMaxM;
  EXPECT_FALSE(ec::gemv_mma_supported(kM + 1, 64, 1024));
  EXPECT_FALSE(ec::gemv_mma_supported(4, 64, 1001));
  EXPECT_FALSE(ec::gemv_mma_supported(0, 64, 1024));
  double worst_b = 0, worst_f = 0;
  struct Case { int N, K; bool x_shared, pingpong; };
  const std::vector<Case> cases = {{77, 1000, true, true},     {3001, 1000, true, true},  {3001, 4096, true, true},
                                   {4096, 4096, true, true},   {4096, 11008, true, true}, {11008, 4096, true, true},
                                   {32000, 4096, true, true},  {3001, 1000, false, true}, {4096, 4096, false, true},
                                   {3001, 1000, true, false},  {4096, 11008, true, false}};
  EXPECT_TRUE(ec::gemv_mma_x_in_shared(9, 4096, 11008));
  EXPECT_FALSE(ec::gemv_mma_x_in_shared(10, 4096, 11008));
  EXPECT_TRUE(ec::gemv_mma_x_in_shared(16, 32000, 4096));
  for (const auto& c : cases) {
    const int N = c.N, K = c.K;
    ec::set_gemv_mma_x_shared(c.x_shared);
    ec::set_gemv_mma_pingpong(c.pingpong);
    std::mt19937_64 rng(11000 + N + K);
    const auto x = rand_bf16(size_t(kM) * K, rng), w = rand_bf16(size_t(N) * K, rng);
    std::vector<double> xd(x.size()), wd(w.size()), ref(size_t(kM) * N);
    for (size_t i = 0; i < x.size(); ++i) xd[i] = f(x[i]);
    for (size_t i = 0; i < w.size(); ++i) wd[i] = f(w[i]);
    for (int n = 0; n < N; ++n) {
      const double* wr = wd.data() + size_t(n) * K;
      for (int m = 0; m < kM; ++m) {
        const double* xr = xd.data() + size_t(m) * K;
        double acc = 0;
        for (int k = 0; k < K; ++k) acc += xr[k] * wr[k];
        ref[size_t(m) * N + n] = acc;
      }
    }
    DevBuf<bf16> dx(x), dw(w), dyb(size_t(kM) * N);
    DevBuf<float> dyf(size_t(kM) * N);
    for (bool f32 : {false, true}) {
      void* y = f32 ? static_cast<void*>(dyf.p) : static_cast<void*>(dyb.p);
      // Each row alone (x + m * K is 16-byte aligned: K % 8 == 0).
      std::vector<std::vector<bf16>> one_b(kM);
      std::vector<std::vector<float>> one_f(kM);
      for (int m = 0; m < kM; ++m) {
        dyb.poison();
        dyf.poison();
        ec::gemv_mma(dx.p + size_t(m) * K, dw.p, y, f32, 1, N, K, nullptr);
        CK(cudaDeviceSynchronize());
        CK(cudaGetLastError());
        if (f32) one_f[m] = dyf.download();
        else one_b[m] = dyb.download();
      }
      for (int M = 1; M <= kM; ++M) {
        const std::string what = "M " + std::to_string(M) + " N " + std::to_string(N) + " K " + std::to_string(K) +
                                 (f32 ? " f32" : " bf16") + (c.x_shared ? "" : " x via L1") +
                                 (c.pingpong ? "" : " single set");
        ASSERT_TRUE(ec::gemv_mma_supported(M, N, K)) << what;
        dyb.poison();
        dyf.poison();
        ec::gemv_mma(dx.p, dw.p, y, f32, M, N, K, nullptr);
        CK(cudaDeviceSynchronize());
        CK(cudaGetLastError());
        const std::vector<double> ref_m(ref.begin(), ref.begin() + size_t(M) * N);
        bool same = true, untouched = true;
        double err;
        if (f32) {
          const auto got = dyf.download();
          err = rel_err(std::vector<float>(got.begin(), got.begin() + size_t(M) * N), ref_m);
          for (int m = 0; m < M; ++m) same = same && std::memcmp(&got[size_t(m) * N], one_f[m].data(), 4 * N) == 0;
          if (M < kM) untouched = std::isnan(got[size_t(M) * N]) && std::isnan(got[size_t(kM) * N - 1]);
          EXPECT_LT(err, 1e-5) << what;
          worst_f = std::max(worst_f, err);
        } else {
          const auto got = dyb.download();
          err = rel_err(std::vector<bf16>(got.begin(), got.begin() + size_t(M) * N), ref_m);
          for (int m = 0; m < M; ++m) same = same && std::memcmp(&got[size_t(m) * N], one_b[m].data(), 2 * N) == 0;
          if (M < kM) untouched = std::isnan(f(got[size_t(M) * N])) && std::isnan(f(got[size_t(kM) * N - 1]));
          EXPECT_LT(err, 5e-3) << what;
          worst_b = std::max(worst_b, err);
        }
        EXPECT_FALSE(std::isnan(err)) << what;
        EXPECT_TRUE(same) << what << ": a row differs from the row alone";
        EXPECT_TRUE(untouched) << what << ": rows past M were written";
      }
    }
  }
  ec::set_gemv_mma_x_shared(true);
  ec::set_gemv_mma_pingpong(true);
  std::printf("gemv_mma vs float64, worst relative error over all M and shapes: bf16 out %.3g, f32 out %.3g\n",
              worst_b, worst_f);
}

// The fused GEMVs (M = 1) against float64 and against the two kernels they replace, on the same inputs.
// The unfused pair rounds its intermediate (the SwiGLU / norm output) to bf16 once, and the fused kernel
// rounds at the same point, so both sit the same distance from float64; the fused sums are cut into other
// pieces (1024-value units added in order), so they may differ from the plain GEMV's in the last bits only.
// Shapes: N below the SM count (blocks of one row), N odd and large enough for several rows per block and
// warps with one unit more than others; K a whole number of units, a partial last unit, and the 7B shapes.
void check_gemv_swiglu(int N, int K) {
  for (bool f32 : {false, true}) {
    std::mt19937_64 rng(1000 + N + K + f32);
    const auto gu = rand_bf16(size_t(2) * K, rng, 4.f), w = rand_bf16(size_t(N) * K, rng);
    DevBuf<bf16> dgu(gu), dw(w), dact(K), dyb(N), dyb2(N);
    DevBuf<float> dyf(N), dyf2(N);
    for (auto* d : {&dyb, &dyb2}) d->poison();
    for (auto* d : {&dyf, &dyf2}) d->poison();
    void* y = f32 ? static_cast<void*>(dyf.p) : static_cast<void*>(dyb.p);
    void* y2 = f32 ? static_cast<void*>(dyf2.p) : static_cast<void*>(dyb2.p);
    ASSERT_TRUE(ec::gemv_fused_supported(N, K, false));
    ec::gemv_swiglu(dgu.p, dw.p, y, f32, N, K, nullptr);
    ec::swiglu(dgu.p, dact.p, 1, K, nullptr);
    ec::gemv(dact.p, dw.p, y2, f32, 1, N, K, nullptr);
    CK(cudaDeviceSynchronize());
    CK(cudaGetLastError());
    std::vector<double> ref(N);
    std::vector<double> act(K);
    for (int k = 0; k < K; ++k) {
      const double g = f(gu[k]), u = f(gu[size_t(K) + k]);
      act[k] = g / (1 + std::exp(-g)) * u;
    }
    for (int n = 0; n < N; ++n) {
      double acc = 0;
      for (int k = 0; k < K; ++k) acc += act[k] * f(w[size_t(n) * K + k]);
      ref[n] = acc;
    }
    std::vector<double> unfused(N);
    if (f32) {
      const auto a = dyf.download(), b2 = dyf2.download();
      for (int n = 0; n < N; ++n) unfused[n] = b2[n];
      EXPECT_LT(rel_err(a, ref), 5e-3) << "N " << N << " K " << K << " f32";
      EXPECT_LT(rel_err(a, unfused), 1e-5) << "N " << N << " K " << K << " f32";
    } else {
      const auto a = dyb.download(), b2 = dyb2.download();
      for (int n = 0; n < N; ++n) unfused[n] = f(b2[n]);
      EXPECT_LT(rel_err(a, ref), 5e-3) << "N " << N << " K " << K << " bf16";
      EXPECT_LT(rel_err(a, unfused), 5e-3) << "N " << N << " K " << K << " bf16";
    }
  }
}

TEST(CudaGemv, GemvSwigluMatchesFloat64AndUnfused) {
  SKIP_WITHOUT_DEVICE();
  check_gemv_swiglu(77, 1000);
  check_gemv_swiglu(3001, 2048);
  check_gemv_swiglu(4096, 11008);
  EXPECT_FALSE(ec::gemv_fused_supported(64, 1001, false));
}

void check_gemv_rmsnorm(int N, int K, bool with_delta) {
  for (bool f32 : {false, true}) {
    std::mt19937_64 rng(2000 + N + K + 2 * with_delta + f32);
    const float eps = 1e-5f;
    const auto x0 = rand_f32(K, rng, -3, 3), delta = rand_f32(K, rng, -2, 2), nw = rand_f32(K, rng, 0.5f, 1.5f);
    const auto w = rand_bf16(size_t(N) * K, rng);
    DevBuf<float> dx(x0), dx2(x0), dd(delta), dnw(nw), dxo(K), dyf(N), dyf2(N);
    DevBuf<bf16> dw(w), dh(K), dyb(N), dyb2(N);
    for (auto* d : {&dxo, &dyf, &dyf2}) d->poison();
    for (auto* d : {&dyb, &dyb2}) d->poison();
    void* y = f32 ? static_cast<void*>(dyf.p) : static_cast<void*>(dyb.p);
    void* y2 = f32 ? static_cast<void*>(dyf2.p) : static_cast<void*>(dyb2.p);
    const float* dl = with_delta ? dd.p : nullptr;
    ASSERT_TRUE(ec::gemv_fused_supported(N, K, true));
    ec::gemv_rmsnorm(dx.p, dl, dnw.p, eps, dxo.p, dw.p, y, f32, N, K, nullptr);
    ec::add_rmsnorm(dx2.p, dl, dnw.p, dh.p, nullptr, 1, K, eps, true, nullptr);
    ec::gemv(dh.p, dw.p, y2, f32, 1, N, K, nullptr);
    CK(cudaDeviceSynchronize());
    CK(cudaGetLastError());
    std::vector<double> v(K), xin(x0.begin(), x0.end()), ref(N);
    double ss = 0;
    for (int k = 0; k < K; ++k) {
      v[k] = double(x0[k]) + (with_delta ? double(delta[k]) : 0.0);
      ss += v[k] * v[k];
    }
    const double inv = 1.0 / std::sqrt(ss / K + eps);
    for (int n = 0; n < N; ++n) {
      double acc = 0;
      for (int k = 0; k < K; ++k) acc += v[k] * inv * nw[k] * f(w[size_t(n) * K + k]);
      ref[n] = acc;
    }
    const std::string what = "N " + std::to_string(N) + " K " + std::to_string(K) + (with_delta ? " delta" : "") +
                             (f32 ? " f32" : " bf16");
    EXPECT_LT(rel_err(dxo.download(), v), 1e-6) << what << ": updated residual";
    EXPECT_EQ(dx.download(), x0) << what << ": x_in must stay as it was";
    // The residual the unfused kernel wrote in place is the fused kernel's x_out, bit for bit.
    if (with_delta) {
      EXPECT_EQ(dxo.download(), dx2.download()) << what;
    }
    std::vector<double> unfused(N);
    if (f32) {
      const auto a = dyf.download(), b2 = dyf2.download();
      for (int n = 0; n < N; ++n) unfused[n] = b2[n];
      EXPECT_LT(rel_err(a, ref), 5e-3) << what;
      EXPECT_LT(rel_err(a, unfused), 1e-5) << what;
    } else {
      const auto a = dyb.download(), b2 = dyb2.download();
      for (int n = 0; n < N; ++n) unfused[n] = f(b2[n]);
      EXPECT_LT(rel_err(a, ref), 5e-3) << what;
      EXPECT_LT(rel_err(a, unfused), 5e-3) << what;
    }
  }
}

TEST(CudaGemv, GemvRmsNormMatchesFloat64AndUnfused) {
  SKIP_WITHOUT_DEVICE();
  for (bool d : {true, false}) {
    check_gemv_rmsnorm(77, 96, d);
    check_gemv_rmsnorm(1001, 1000, d);  // 125 chunks: threads past them hold nothing; a partial last unit
    check_gemv_rmsnorm(12288, 4096, d); // the 7B QKV shape
  }
  check_gemv_rmsnorm(300, 8192, true);  // every thread holds 4 chunks
  EXPECT_FALSE(ec::gemv_fused_supported(64, 8200, true));
}

// set_gemv_l2_ahead (the GEMV blocks prefetch the start of their weights into L2 before their wait) is speed
// only: every batch-1 GEMV gives the same bits with it on, f32 or bf16 out, at a size past a block's rows and one
// inside them.
TEST(CudaGemv, GemvL2AheadChangesNoBit) {
  SKIP_WITHOUT_DEVICE();
  const int N = 4096, K = 4096;
  std::mt19937_64 rng(77);
  const auto w = rand_bf16(size_t(N) * K, rng), x = rand_bf16(size_t(2) * K, rng), gu = rand_bf16(size_t(2) * K, rng);
  const auto x0 = rand_f32(K, rng, -3, 3), nw = rand_f32(K, rng, 0.5f, 1.5f);
  DevBuf<bf16> dw(w), dx(x), dgu(gu);
  DevBuf<float> dx0(x0), dnw(nw), dxo(K), dy(size_t(2) * N);
  auto run_all = [&] {
    std::vector<std::vector<float>> out;
    auto take = [&] {
      CK(cudaDeviceSynchronize());
      CK(cudaGetLastError());
      out.push_back(dy.download());
      dy.poison();
    };
    dy.poison();
    for (const bool f32 : {true, false}) {
      ec::gemv_units(dx.p, dw.p, dy.p, f32, 1, N, K, nullptr);
      take();
      ec::gemv_units(dx.p, dw.p, dy.p, f32, 2, N, K, nullptr);
      take();
      ec::gemv_swiglu(dgu.p, dw.p, dy.p, f32, N, K, nullptr);
      take();
      ec::gemv_rmsnorm(dx0.p, nullptr, dnw.p, 1e-5f, dxo.p, dw.p, dy.p, f32, N, K, nullptr);
      take();
    }
    ec::ordered_gemv(dx.p, dw.p, dy.p, true, N, K, nullptr);
    take();
    ec::ordered_gemv_rmsnorm(dx0.p, nullptr, dnw.p, 1e-5f, dxo.p, dw.p, dy.p, true, N, K, nullptr);
    take();
    return out;
  };
  ec::set_gemv_l2_ahead(0);
  const auto off = run_all();
  for (int bytes : {64 << 10, 4 << 20}) {
    ec::set_gemv_l2_ahead(bytes);
    EXPECT_EQ(ec::gemv_l2_ahead(), bytes);
    const auto on = run_all();
    ASSERT_EQ(on.size(), off.size());
    for (size_t i = 0; i < on.size(); ++i)
      EXPECT_EQ(std::memcmp(on[i].data(), off[i].data(), on[i].size() * sizeof(float)), 0)
          << "GEMV " << i << " with " << bytes << " bytes ahead";
  }
  ec::set_gemv_l2_ahead(0);
}

// set_gemv_bulk_prefix (each block of the one-row unit-layout GEMVs copies the first bytes of its rows into shared
// memory before its wait, v25) is speed only: gemv_units at M = 1, gemv_swiglu and gemv_rmsnorm (its y and its
// x_out) give the same bits with any prefix (none, less than a unit, a unit across two chunks, most of a block,
// more than fits beside x), f32 or bf16 out; K a multiple of 1,024 or not, N that leaves the last block short;
// M = 2 takes no prefix and is unchanged.
TEST(CudaGemv, GemvBulkPrefixChangesNoBit) {
  SKIP_WITHOUT_DEVICE();
  std::mt19937_64 rng(93);
  struct Shape { int N, K; };
  for (const Shape sh : {Shape{4096, 4096}, Shape{4096, 11008}, Shape{1001, 1000}, Shape{77, 96}, Shape{12288, 4096}}) {
    const int N = sh.N, K = sh.K;
    const auto w = rand_bf16(size_t(N) * K, rng), x = rand_bf16(size_t(2) * K, rng), gu = rand_bf16(size_t(2) * K, rng);
    const auto x0 = rand_f32(K, rng, -3, 3), d0 = rand_f32(K, rng, -1, 1), nw = rand_f32(K, rng, 0.5f, 1.5f);
    DevBuf<bf16> dw(w), dx(x), dgu(gu);
    DevBuf<float> dx0(x0), dd0(d0), dnw(nw), dxo(K), dy(size_t(2) * N);
    auto run_all = [&] {
      std::vector<std::vector<float>> out;
      auto take = [&](DevBuf<float>& b) {
        CK(cudaDeviceSynchronize());
        CK(cudaGetLastError());
        out.push_back(b.download());
        b.poison();
      };
      dy.poison();
      dxo.poison();
      for (const bool f32 : {true, false}) {
        ec::gemv_units(dx.p, dw.p, dy.p, f32, 1, N, K, nullptr);
        take(dy);
        ec::gemv_units(dx.p, dw.p, dy.p, f32, 2, N, K, nullptr);
        take(dy);
        ec::gemv_swiglu(dgu.p, dw.p, dy.p, f32, N, K, nullptr);
        take(dy);
        if (!ec::gemv_fused_supported(N, K, true)) continue;  // the norm's row past its threads' chunks
        ec::gemv_rmsnorm(dx0.p, dd0.p, dnw.p, 1e-5f, dxo.p, dw.p, dy.p, f32, N, K, nullptr);
        take(dy);
        take(dxo);
      }
      return out;
    };
    ec::set_gemv_bulk_prefix(0);
    const auto off = run_all();
    for (const int bytes : {1000, 16 * 1024 + 4096, 160 * 1024, 256 * 1024}) {
      ec::set_gemv_bulk_prefix(bytes);
      EXPECT_EQ(ec::gemv_bulk_prefix(), bytes);
      const auto on = run_all();
      ASSERT_EQ(on.size(), off.size());
      for (size_t i = 0; i < on.size(); ++i)
        EXPECT_EQ(std::memcmp(on[i].data(), off[i].data(), on[i].size() * sizeof(float)), 0)
            << "N " << N << " K " << K << ": output " << i << " with a " << bytes << "-byte prefix";
    }
    ec::set_gemv_bulk_prefix(0);
  }
}

// gemv_preload (the first bytes of a block's rows copied into shared memory before its wait) is gemv_units at
// M = 1 bit for bit, f32 or bf16 out, whatever it preloads: nothing, less than one unit, a chunk and a bit
// (a unit across two chunks), most of a block, and more than a block holds; K a multiple of 1,024 or not (a
// row's last unit shorter), N that leaves the last block short.
TEST(CudaGemv, GemvPreloadGivesGemvUnitsBits) {
  SKIP_WITHOUT_DEVICE();
  if (!ec::gemv_preload_supported(4096, 4096, 0)) GTEST_SKIP() << "gemv_preload needs an sm_90 device";
  std::mt19937_64 rng(91);
  struct Shape { int N, K; };
  for (const Shape sh : {Shape{4096, 4096}, Shape{4096, 11008}, Shape{1001, 1000}, Shape{77, 96}, Shape{12288, 4096}}) {
    const int N = sh.N, K = sh.K;
    const auto w = rand_bf16(size_t(N) * K, rng), x = rand_bf16(K, rng);
    DevBuf<bf16> dw(w), dx(x);
    DevBuf<float> dy(N), dref(N);
    for (const bool f32 : {true, false}) {
      dref.poison();
      ec::gemv_units(dx.p, dw.p, dref.p, f32, 1, N, K, nullptr);
      CK(cudaDeviceSynchronize());
      const auto ref = dref.download();
      for (const int pre : {0, 1000, 16 * 1024 + 4096, 160 * 1024, 200 * 1024, 256 * 1024}) {
        const std::string what = "N " + std::to_string(N) + " K " + std::to_string(K) + " preload " +
                                 std::to_string(pre) + (f32 ? " f32" : " bf16");
        if (!ec::gemv_preload_supported(N, K, pre)) {
          EXPECT_THROW(ec::gemv_preload(dx.p, dw.p, dy.p, f32, N, K, pre, nullptr), std::invalid_argument) << what;
          continue;
        }
        dy.poison();
        ec::gemv_preload(dx.p, dw.p, dy.p, f32, N, K, pre, nullptr);
        CK(cudaDeviceSynchronize());
        CK(cudaGetLastError());
        const auto got = dy.download();
        EXPECT_EQ(std::memcmp(got.data(), ref.data(), (f32 ? N * sizeof(float) : N * sizeof(bf16))), 0) << what;
      }
    }
  }
  EXPECT_FALSE(ec::gemv_preload_supported(4096, 4092, 0));  // K % 8
}

}  // namespace

#else
TEST(CudaGemv, SkippedWithoutCudaBuild) { GTEST_SKIP() << "built without LLM_ENABLE_CUDA"; }
#endif
