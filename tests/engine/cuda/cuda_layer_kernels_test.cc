// test-deps: engine_internals
// The per-token kernels of a layer (embedding, add + RMSNorm, SwiGLU, RoPE + KV write in bf16/float and into
// the fp8 cache, argmax, the bench's uniform fill) against a float64 CPU reference on random inputs, every
// templated kernel in both bf16 and float. Outputs are poisoned (NaN) before each run, so an element the kernel
// fails to write fails the check. Skips when no CUDA device is present.
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

#include "backend/cuda/kernels.h"
#include "support/cuda_test_util.h"

namespace ec = engine::cuda;
using namespace cuda_test;

namespace {

// Every templated kernel runs in both storage types: bf16 (the fast path) against bf16-level bounds, float
// (the f32 reference mode) against ~1e-5, tight enough that only f32 arithmetic is left.

template <typename E>
void check_embedding() {
  std::mt19937_64 rng(1);
  const int vocab = 301, dim = 72, T = 13;
  const auto table = rand_vals<E>(size_t(vocab) * dim, rng);
  std::vector<int32_t> tok(T);
  for (auto& t : tok) t = int32_t(rng() % vocab);
  DevBuf<E> dt(table);
  DevBuf<int32_t> dtok(tok);
  DevBuf<float> dx(size_t(T) * dim);
  dx.poison();
  ec::embedding(dtok.p, dt.p, dx.p, T, dim, nullptr);
  CK(cudaDeviceSynchronize());
  const auto x = dx.download();
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < dim; ++i)
      ASSERT_EQ(x[t * dim + i], f(table[size_t(tok[t]) * dim + i])) << type_name<E>() << " " << t << "," << i;
}

TEST(CudaLayerKernels, EmbeddingCopiesRows) {
  SKIP_WITHOUT_DEVICE();
  check_embedding<bf16>();
  check_embedding<float>();
}

template <typename E>
void check_add_rmsnorm(int dim, bool with_delta, bool write_back, bool with_rows) {
  std::mt19937_64 rng(dim + with_delta + 2 * write_back + 4 * with_rows);
  const int T = 7;
  const float eps = 1e-5f;
  const auto x0 = rand_f32(size_t(T) * dim, rng, -3, 3);
  const auto delta = rand_f32(size_t(T) * dim, rng, -2, 2);  // f32 in both modes (O / down GEMM output)
  const auto w = rand_f32(dim, rng, 0.5f, 1.5f);
  std::vector<int32_t> rows = {5, 0, 3};
  const int n_rows = with_rows ? 3 : T;
  DevBuf<float> dx(x0), dw(w), dd(delta);
  DevBuf<E> dout(size_t(n_rows) * dim);
  DevBuf<int32_t> drows(rows);
  dout.poison();
  ec::add_rmsnorm(dx.p, with_delta ? dd.p : nullptr, dw.p, dout.p, with_rows ? drows.p : nullptr, n_rows, dim, eps,
                  write_back, nullptr);
  CK(cudaDeviceSynchronize());
  std::vector<double> ref(size_t(n_rows) * dim), xref(x0.begin(), x0.end());
  for (int r = 0; r < n_rows; ++r) {
    const int src = with_rows ? rows[r] : r;
    std::vector<double> v(dim);
    double ss = 0;
    for (int i = 0; i < dim; ++i) {
      v[i] = double(x0[size_t(src) * dim + i]) + (with_delta ? double(delta[size_t(src) * dim + i]) : 0.0);
      ss += v[i] * v[i];
    }
    const double inv = 1.0 / std::sqrt(ss / dim + eps);
    for (int i = 0; i < dim; ++i) {
      ref[size_t(r) * dim + i] = v[i] * inv * w[i];
      if (write_back) xref[size_t(src) * dim + i] = v[i];
    }
  }
  EXPECT_LT(rel_err(dout.download(), ref), bound<E>(5e-3)) << type_name<E>() << " dim " << dim;
  EXPECT_LT(rel_err(dx.download(), xref), 1e-6) << type_name<E>() << " dim " << dim;
}

TEST(CudaLayerKernels, AddRmsNormMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  // 4136: the 16-byte register path (dim % 8 == 0), not a multiple of the block; 4100: the scalar path.
  for (int dim : {4136, 4100, 96}) {
    check_add_rmsnorm<bf16>(dim, true, true, false);
    check_add_rmsnorm<bf16>(dim, false, true, false);
    check_add_rmsnorm<bf16>(dim, true, false, true);
    check_add_rmsnorm<float>(dim, true, true, false);
    check_add_rmsnorm<float>(dim, false, true, false);
    check_add_rmsnorm<float>(dim, true, false, true);
  }
}

template <typename E>
void check_swiglu(int hidden) {
  std::mt19937_64 rng(hidden);
  const int T = 9;
  const auto gu = rand_vals<E>(size_t(T) * 2 * hidden, rng, 4.f);
  DevBuf<E> dgu(gu), dout(size_t(T) * hidden);
  dout.poison();
  ec::swiglu(dgu.p, dout.p, T, hidden, nullptr);
  CK(cudaDeviceSynchronize());
  std::vector<double> ref(size_t(T) * hidden);
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < hidden; ++j) {
      const double g = f(gu[size_t(t) * 2 * hidden + j]), u = f(gu[size_t(t) * 2 * hidden + hidden + j]);
      ref[size_t(t) * hidden + j] = g / (1 + std::exp(-g)) * u;
    }
  EXPECT_LT(rel_err(dout.download(), ref), bound<E>(5e-3)) << type_name<E>() << " hidden " << hidden;
}

TEST(CudaLayerKernels, SwigluMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  for (int hidden : {256, 172}) {  // 16-byte path and scalar path
    check_swiglu<bf16>(hidden);
    check_swiglu<float>(hidden);
  }
}

// hd 24 and 8: a head row of 3 and 1 quads (4 pairs a thread); T = 3000 at hd 128: more work items than the
// launch has threads, so the grid-stride loop runs more than once.
template <typename E>
void check_rope_kv(int hd, int T) {
  std::mt19937_64 rng(3 + hd + T);
  const int nh = 4, nkv = 2, bs = 5, num_blocks = (T + 2 * bs) / bs, rope_len = 1000;
  const int row = (nh + 2 * nkv) * hd, qd = nh * hd, half = hd / 2;
  const double theta = 10000.0;
  const auto qkv0 = rand_f32(size_t(T) * row, rng);  // the f32 QKV GEMM output, in both modes
  std::vector<int32_t> pos(T), slots(T);
  std::vector<int> perm(num_blocks * bs);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  for (int t = 0; t < T; ++t) {
    pos[t] = int32_t(rng() % rope_len);
    slots[t] = perm[t];
  }
  slots[4] = -1;  // a padding row: must write no K/V (its q is still written)
  std::vector<float2> rope(size_t(rope_len) * half);
  for (int p = 0; p < rope_len; ++p)
    for (int i = 0; i < half; ++i) {
      const double a = p * std::pow(theta, -2.0 * i / hd);
      rope[size_t(p) * half + i] = make_float2(float(std::cos(a)), float(std::sin(a)));
    }
  const size_t cache_n = size_t(num_blocks) * nkv * bs * hd;
  DevBuf<float> dqkv(qkv0);
  DevBuf<E> dq(size_t(T) * qd), dk(cache_n), dv(cache_n);
  DevBuf<int32_t> dpos(pos), dslots(slots);
  DevBuf<float2> drope(rope);
  dq.poison();
  dk.poison();
  dv.poison();
  ec::rope_kv_write(dqkv.p, dpos.p, dslots.p, drope.p, dq.p, dk.p, dv.p, T, nh, nkv, hd, bs, nullptr);
  CK(cudaDeviceSynchronize());
  const auto qo = dq.download(), kc = dk.download(), vc = dv.download();
  EXPECT_EQ(dqkv.download(), qkv0) << "qkv is an input only";
  std::vector<double> qref, qout, kref, kout, vref, vout;
  auto rot = [&](const float* x, int i, int p, bool second) {
    const double a = p * std::pow(theta, -2.0 * i / hd), c = std::cos(a), s = std::sin(a);
    const double x1 = x[i], x2 = x[i + half];
    return second ? x2 * c + x1 * s : x1 * c - x2 * s;
  };
  for (int t = 0; t < T; ++t) {
    for (int h = 0; h < nh; ++h)
      for (int d = 0; d < hd; ++d) {
        qref.push_back(rot(&qkv0[size_t(t) * row + h * hd], d % half, pos[t], d >= half));
        qout.push_back(f(qo[size_t(t) * qd + h * hd + d]));
      }
    if (slots[t] < 0) continue;
    const int blk = slots[t] / bs, off = slots[t] % bs;
    for (int h = 0; h < nkv; ++h)
      for (int d = 0; d < hd; ++d) {
        const size_t at = ((size_t(blk) * nkv + h) * bs + off) * hd + d;
        kref.push_back(rot(&qkv0[size_t(t) * row + (nh + h) * hd], d % half, pos[t], d >= half));
        kout.push_back(f(kc[at]));
        vref.push_back(qkv0[size_t(t) * row + (nh + nkv + h) * hd + d]);
        vout.push_back(f(vc[at]));
      }
  }
  // The (cos, sin) table is f32: ~6e-8 relative per value against the float64 angles.
  EXPECT_LT(rel_err(qout, qref), bound<E>(5e-3, 1e-6)) << type_name<E>();
  EXPECT_LT(rel_err(kout, kref), bound<E>(5e-3, 1e-6)) << type_name<E>();
  // v is copied: exact in float, rounded once (to nearest even) in bf16.
  ASSERT_EQ(vout.size(), vref.size());
  for (size_t i = 0; i < vout.size(); ++i)
    ASSERT_EQ(vout[i], double(f(static_cast<E>(float(vref[i]))))) << type_name<E>() << " v " << i;
  // Slots nobody wrote keep the poison: the tokens but the padding row wrote T - 1 of the cache's slots.
  size_t written_k = 0, written_v = 0;
  for (size_t i = 0; i < cache_n; ++i) {
    written_k += std::isfinite(f(kc[i])) ? 1 : 0;
    written_v += std::isfinite(f(vc[i])) ? 1 : 0;
  }
  EXPECT_EQ(written_k, size_t(T - 1) * nkv * hd) << type_name<E>() << " hd " << hd << " T " << T;
  EXPECT_EQ(written_v, size_t(T - 1) * nkv * hd) << type_name<E>() << " hd " << hd << " T " << T;
}

TEST(CudaLayerKernels, RopeKvWriteMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  for (const auto& [hd, T] : {std::pair{24, 9}, {8, 7}, {128, 3000}}) {
    check_rope_kv<bf16>(hd, T);
    check_rope_kv<float>(hd, T);
  }
}

// The fp8 KV write: each (token, kv head) row of rotated k and of v becomes e4m3(x / scale) with scale =
// max|x| / 448 (checked against the same float rotation and quantization done here), q stays bf16, padding
// rows write nothing.
// Head dims 128, 24 (a row's 3 quads in a group of 4 lanes, one idle) and 8 (one lane a row); T = 3000 at hd 128:
// more work items than the launch has threads.
void check_rope_kv_fp8(int hd, int T) {
  std::mt19937_64 rng(77 + hd + T);
  const int nh = 4, nkv = 2, bs = 16, num_blocks = (T + bs - 1) / bs + 1;
  const int qkv_dim = (nh + 2 * nkv) * hd;
  const auto qkv = rand_f32(size_t(T) * qkv_dim, rng, -3.f, 3.f);
  const int max_pos = 64;
  std::vector<int32_t> pos(T), slots(T);
  std::vector<int> perm(num_blocks * bs);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  for (int t = 0; t < T; ++t) {
    pos[t] = int32_t(rng() % max_pos);
    slots[t] = perm[t];
  }
  slots[T / 2] = -1;  // a padding row
  std::vector<float2> rope(size_t(max_pos) * (hd / 2));
  for (int p = 0; p < max_pos; ++p)
    for (int i = 0; i < hd / 2; ++i) {
      const double a = p * std::pow(10000.0, -2.0 * i / hd);
      rope[size_t(p) * (hd / 2) + i] = make_float2(float(std::cos(a)), float(std::sin(a)));
    }
  const size_t cache_n = size_t(num_blocks) * nkv * bs * hd;
  DevBuf<float> dqkv(qkv), dks(cache_n / hd), dvs(cache_n / hd);
  DevBuf<float2> drope(rope);
  DevBuf<int32_t> dpos(pos), dslots(slots);
  DevBuf<bf16> dq(size_t(T) * nh * hd);
  DevBuf<uint8_t> dk(cache_n), dv(cache_n);
  CK(cudaMemset(dk.p, 0x7f, cache_n));  // e4m3 NaN: a row the kernel should not touch stays NaN
  CK(cudaMemset(dv.p, 0x7f, cache_n));
  dks.poison();
  dvs.poison();
  ec::rope_kv_write_fp8(dqkv.p, dpos.p, dslots.p, drope.p, dq.p, dk.p, dv.p, dks.p, dvs.p, T, nh, nkv, hd, bs, nullptr);
  CK(cudaDeviceSynchronize());
  const auto k8 = dk.download(), v8 = dv.download();
  const auto ks = dks.download(), vs = dvs.download();
  size_t rows_written = 0;
  for (size_t r = 0; r < cache_n / hd; ++r) rows_written += std::isfinite(ks[r]) ? 1 : 0;
  EXPECT_EQ(rows_written, size_t(T - 1) * nkv);  // one padding row
  for (int t = 0; t < T; ++t) {
    if (slots[t] < 0) continue;
    for (int h = 0; h < nkv; ++h) {
      const float* k = &qkv[size_t(t) * qkv_dim + (nh + h) * hd];
      const float* v = &qkv[size_t(t) * qkv_dim + (nh + nkv + h) * hd];
      std::vector<float> kr(hd), vr(hd);
      for (int i = 0; i < hd / 2; ++i) {
        const float2 cs = rope[size_t(pos[t]) * (hd / 2) + i];
        kr[i] = k[i] * cs.x - k[i + hd / 2] * cs.y;
        kr[i + hd / 2] = k[i + hd / 2] * cs.x + k[i] * cs.y;
        vr[i] = v[i], vr[i + hd / 2] = v[i + hd / 2];
      }
      const size_t row = (size_t(slots[t] / bs) * nkv + h) * bs + slots[t] % bs;
      std::vector<uint8_t> kb(hd), vb(hd);
      std::vector<double> kd(hd), vd(hd);
      const float kscale = quantize_row_fp8(kr.data(), hd, kb.data(), kd.data());
      const float vscale = quantize_row_fp8(vr.data(), hd, vb.data(), vd.data());
      EXPECT_NEAR(ks[row], kscale, 1e-6 * kscale) << "token " << t << " head " << h;
      EXPECT_NEAR(vs[row], vscale, 1e-6 * vscale) << "token " << t << " head " << h;
      int off = 0;  // the device's fast-math division and rotation may move a value across a rounding boundary
      for (int i = 0; i < hd; ++i) {
        off += std::abs(int(k8[row * hd + i]) - int(kb[i])) > 1;
        off += std::abs(int(v8[row * hd + i]) - int(vb[i])) > 1;
      }
      EXPECT_EQ(off, 0) << "hd " << hd << " token " << t << " head " << h;
    }
  }
  const auto q = dq.download();
  double qerr = 0;  // q: bf16 of the same rotation
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < nh; ++h)
      for (int i = 0; i < hd / 2; ++i) {
        const float* x = &qkv[size_t(t) * qkv_dim + h * hd];
        const float2 cs = rope[size_t(pos[t]) * (hd / 2) + i];
        const double r0 = double(x[i]) * cs.x - double(x[i + hd / 2]) * cs.y;
        const double r1 = double(x[i + hd / 2]) * cs.x + double(x[i]) * cs.y;
        const size_t at = (size_t(t) * nh + h) * hd + i;
        qerr = std::max({qerr, std::abs(f(q[at]) - r0) / (std::abs(r0) + 1e-3), std::abs(f(q[at + hd / 2]) - r1) / (std::abs(r1) + 1e-3)});
      }
  EXPECT_LT(qerr, 8e-3) << "hd " << hd;
}

TEST(CudaLayerKernels, RopeKvWriteFp8MatchesQuantizedFloat) {
  SKIP_WITHOUT_DEVICE();
  for (const auto& [hd, T] : {std::pair{128, 6}, {24, 9}, {8, 5}, {128, 3000}}) check_rope_kv_fp8(hd, T);
}

TEST(CudaLayerKernels, ArgmaxPicksLowestIndexOfMaximum) {
  SKIP_WITHOUT_DEVICE();
  std::mt19937_64 rng(5);
  const int rows = 6, vocab = 32000;
  auto logits = rand_f32(size_t(rows) * vocab, rng, -10, 10);
  std::vector<int32_t> want(rows);
  for (int r = 0; r < rows; ++r) {
    float* row = logits.data() + size_t(r) * vocab;
    const int a = int(rng() % vocab), b2 = int(rng() % vocab);
    row[a] = row[b2] = 50.f;  // a tie: the lower index wins
    want[r] = std::min(a, b2);
  }
  logits[size_t(2) * vocab + 7] = NAN;        // NaN never wins
  logits[size_t(3) * vocab + vocab - 1] = INFINITY;
  want[3] = vocab - 1;
  DevBuf<float> dl(logits);
  DevBuf<int32_t> ids(rows);
  ids.poison();
  ec::argmax_rows(dl.p, ids.p, rows, vocab, nullptr);
  CK(cudaDeviceSynchronize());
  EXPECT_EQ(ids.download(), want);
}

TEST(CudaLayerKernels, FillUniformSameValuesInBothTypes) {
  SKIP_WITHOUT_DEVICE();
  // One f32 value per index, stored as E: the bf16 fill is the f32 fill rounded (what the benchmark's KV
  // contents are in either mode), inside (-amp, amp), and not constant.
  const int64_t n = 100003;
  const float amp = 1.5f;
  DevBuf<bf16> db(n);
  DevBuf<float> df(n);
  db.poison();
  df.poison();
  ec::fill_uniform(db.p, n, amp, 42, nullptr);
  ec::fill_uniform(df.p, n, amp, 42, nullptr);
  CK(cudaDeviceSynchronize());
  const auto vb = db.download();
  const auto vf = df.download();
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_TRUE(vf[i] >= -amp && vf[i] <= amp) << i << ": " << vf[i];
    ASSERT_EQ(f(vb[i]), f(b(vf[i]))) << i;
    sum += vf[i];
  }
  EXPECT_LT(std::fabs(sum / n), 0.02);
  EXPECT_NE(vf[0], vf[1]);
}

}  // namespace

#else
TEST(CudaLayerKernels, SkippedWithoutCudaBuild) { GTEST_SKIP() << "built without LLM_ENABLE_CUDA"; }
#endif
