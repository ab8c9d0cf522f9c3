// test-deps: engine_internals
// The GEMMs and GEMVs (skinny, ordered and tuned GEMMs, the one-row and unit-layout GEMVs, the tensor-core
// GEMV, the TMA + wgmma stream, the fused SwiGLU / RMSNorm GEMVs) against float64 on random inputs, and the bit-level properties the
// deterministic mode relies on (a row's result independent of M). Skips when no CUDA device is present.
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

// A GEMM's y read back as floats from whichever of the two buffers the output type used.
std::vector<float> y_as_floats(bool f32, const DevBuf<float>& yf, const DevBuf<bf16>& yb) {
  if (f32) return yf.download();
  std::vector<float> y;
  for (const bf16 v : yb.download()) y.push_back(f(v));
  return y;
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

// The deterministic mode's one-row GEMVs: bit for bit ordered_gemm's row (so every other M's, through
// OrderedTunedGemmRowsDoNotDependOnM), the fused forms bit for bit the kernels they replace followed by
// ordered_gemm, in both output types; nothing written past N. Shapes: the smallest (one group of 8 rows, one
// 64-k stage), the 7B shapes (O, QKV, gate/up, down) and lm_head's, whose 4,000 groups leave some warps one
// group fewer than others. Weights filled on the device (the lm_head matrix is 131 M values).
TEST(CudaGemm, OrderedGemvRowsAreOrderedGemmsBits) {
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

TEST(CudaGemm, GemvMatchesFloat64) {
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
TEST(CudaGemm, GemvUnitsMatchesFloat64) {
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
TEST(CudaGemm, GemvUnitsSmallMMatchesFloat64AndOneRow) {
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
TEST(CudaGemm, GemvMmaMatchesFloat64AndOneRow) {
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

TEST(CudaGemm, GemvSwigluMatchesFloat64AndUnfused) {
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

TEST(CudaGemm, GemvRmsNormMatchesFloat64AndUnfused) {
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
TEST(CudaGemm, GemvL2AheadChangesNoBit) {
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
TEST(CudaGemm, GemvBulkPrefixChangesNoBit) {
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
TEST(CudaGemm, GemvPreloadGivesGemvUnitsBits) {
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
TEST(CudaGemm, SkippedWithoutCudaBuild) { GTEST_SKIP() << "built without LLM_ENABLE_CUDA"; }
#endif
