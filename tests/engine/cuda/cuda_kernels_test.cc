// test-deps: engine_internals
// Each CUDA kernel against a float64 CPU reference on random inputs: GQA, odd lengths and head dims,
// block tables with gaps, several context splits; every kernel templated on the storage type in both bf16
// and float. Outputs are poisoned (NaN) before each run, so an element the kernel fails to write fails the
// check. Skips when no CUDA device is present.
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

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include "backend/cuda/gemm_tuned.h"
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

TEST(CudaKernels, EmbeddingCopiesRows) {
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

TEST(CudaKernels, AddRmsNormMatchesFloat64) {
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

TEST(CudaKernels, SwigluMatchesFloat64) {
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

TEST(CudaKernels, RopeKvWriteMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  for (const auto& [hd, T] : {std::pair{24, 9}, {8, 7}, {128, 3000}}) {
    check_rope_kv<bf16>(hd, T);
    check_rope_kv<float>(hd, T);
  }
}

struct AttnCase {
  int nh, nkv, hd, bs;
  std::vector<int> ctx;    // context length of each sequence after this step
  std::vector<int> qlen;   // query tokens of each sequence (the last qlen positions)
  int splits;
  int q_pad = 0;           // q_stride = nh*hd + q_pad (the backend passes 0; a multiple of 8)
};

// Which kernel reads the cache: attention.cu's paged kernel, attention_decode.cu's (version 2) over the same
// cache, or either over an fp8 copy of it (bf16 activations; the reference then uses the dequantized values).
enum class AttnKernel { kPaged, kDecode, kDecodeFp8, kPagedFp8 };
bool reads_fp8(AttnKernel k) { return k == AttnKernel::kDecodeFp8 || k == AttnKernel::kPagedFp8; }

// One row of fp8 e4m3 as the backend's fp8 KV write stores it: scale = max|x| / 448, bytes = e4m3(x / scale).
float quantize_row_fp8(const float* x, int n, uint8_t* bytes, double* dequant) {
  float amax = 0.f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float scale = amax > 0.f ? amax / 448.f : 1.f;
  for (int i = 0; i < n; ++i) {
    bytes[i] = __nv_cvt_float_to_fp8(x[i] / scale, __NV_SATFINITE, __NV_E4M3);
    const __half_raw h = __nv_cvt_fp8_to_halfraw(bytes[i], __NV_E4M3);
    dequant[i] = double(__half2float(__half(h))) * scale;
  }
  return scale;
}

// tiled: the backend's split of a mixed step: every sequence with more than one query token through the
// prefill kernel (tiles of up to kPrefillTileQ tokens), the others through the paged kernel over a token
// list (with c.splits), both writing rows of the same output.
template <typename E>
void check_attention(const AttnCase& c, uint64_t seed, bool tiled = false, AttnKernel kernel = AttnKernel::kPaged) {
  std::mt19937_64 rng(seed);
  const int nseq = int(c.ctx.size());
  const int row = c.nh * c.hd + c.q_pad;
  // Block tables drawn from a shuffled pool twice as large as needed: gaps and any order.
  int need = 0;
  for (int L : c.ctx) need += (L + c.bs - 1) / c.bs;
  const int num_blocks = 2 * need + 3;
  std::vector<int> pool(num_blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  std::vector<int32_t> bt, pos, bt_start;
  std::vector<int> tok_seq;
  int used = 0;
  for (int s = 0; s < nseq; ++s) {
    const int nb = (c.ctx[s] + c.bs - 1) / c.bs, start = int(bt.size());
    for (int i = 0; i < nb; ++i) bt.push_back(pool[used++]);
    for (int j = 0; j < c.qlen[s]; ++j) {
      pos.push_back(c.ctx[s] - c.qlen[s] + j);
      bt_start.push_back(start);
      tok_seq.push_back(s);
    }
  }
  const int T = int(pos.size());
  const size_t cache_n = size_t(num_blocks) * c.nkv * c.bs * c.hd;
  const auto kc = rand_vals<E>(cache_n, rng, 2.f), vc = rand_vals<E>(cache_n, rng);
  const auto q = rand_vals<E>(size_t(T) * row, rng, 2.f);
  // The values the reference reads: the cache as stored, or its fp8 copy dequantized.
  std::vector<double> kref(cache_n), vref(cache_n);
  std::vector<uint8_t> k8(cache_n), v8(cache_n);
  std::vector<float> ks(cache_n / c.hd), vs(cache_n / c.hd);
  for (size_t r = 0; r < cache_n / c.hd; ++r) {
    std::vector<float> kr(c.hd), vr(c.hd);
    for (int i = 0; i < c.hd; ++i) kr[i] = f(kc[r * c.hd + i]), vr[i] = f(vc[r * c.hd + i]);
    if (reads_fp8(kernel)) {
      ks[r] = quantize_row_fp8(kr.data(), c.hd, &k8[r * c.hd], &kref[r * c.hd]);
      vs[r] = quantize_row_fp8(vr.data(), c.hd, &v8[r * c.hd], &vref[r * c.hd]);
    } else {
      for (int i = 0; i < c.hd; ++i) kref[r * c.hd + i] = kr[i], vref[r * c.hd + i] = vr[i];
    }
  }
  DevBuf<E> dq(q), dk(kc), dv(vc), dout(size_t(T) * c.nh * c.hd);
  DevBuf<uint8_t> dk8(k8), dv8(v8);
  DevBuf<float> dks(ks), dvs(vs);
  DevBuf<int32_t> dpos(pos), dbts(bt_start), dbt(bt);
  DevBuf<float> dpart(size_t(T) * c.nh * c.splits * (c.hd + 2));
  dout.poison();
  ec::AttentionArgs<E> a;
  a.q = dq.p;
  a.q_stride = row;
  a.k_cache = dk.p;
  a.v_cache = dv.p;
  a.positions = dpos.p;
  a.bt_start = dbts.p;
  a.block_tables = dbt.p;
  a.out = dout.p;
  a.part = dpart.p;
  a.T = T;
  a.nh = c.nh;
  a.nkv = c.nkv;
  a.hd = c.hd;
  a.block_size = c.bs;
  a.num_splits = c.splits;
  a.scale = 1.0f / std::sqrt(float(c.hd));
  if (reads_fp8(kernel)) {
    a.k_fp8 = dk8.p;
    a.v_fp8 = dv8.p;
    a.k_scale = dks.p;
    a.v_scale = dvs.p;
  }
  auto decode = [&] {
    if (kernel == AttnKernel::kPaged || kernel == AttnKernel::kPagedFp8) ec::paged_attention(a, nullptr);
    else ec::decode_attention(a, nullptr);
  };
  std::vector<int32_t> tiles, dec;
  if (tiled) {
    int t = 0;
    for (int s = 0; s < nseq; ++s) {
      if (c.qlen[s] > 1) {
        for (int j0 = 0; j0 < c.qlen[s]; j0 += ec::kPrefillTileQ)
          tiles.push_back(ec::prefill_tile(t + j0, std::min(ec::kPrefillTileQ, c.qlen[s] - j0)));
      } else {
        for (int j = 0; j < c.qlen[s]; ++j) dec.push_back(t + j);
      }
      t += c.qlen[s];
    }
    // The launch order of the backend: prefill tiles, then the decode list.
    DevBuf<int32_t> dtiles(tiles), ddec(dec);
    ec::paged_attention_prefill(a, dtiles.p, int(tiles.size()), nullptr);
    a.tokens = ddec.p;
    a.T = int(dec.size());
    decode();
    CK(cudaDeviceSynchronize());
  } else {
    decode();
    CK(cudaDeviceSynchronize());
  }
  const auto out = dout.download();
  std::vector<double> ref(out.size());
  const int group = c.nh / c.nkv;
  for (int t = 0; t < T; ++t) {
    const int len = pos[t] + 1;
    for (int h = 0; h < c.nh; ++h) {
      const int kvh = h / group;
      std::vector<double> sc(len);
      double mx = -INFINITY;
      auto at = [&](int tok) {
        const int blk = bt[bt_start[t] + tok / c.bs];
        return ((size_t(blk) * c.nkv + kvh) * c.bs + tok % c.bs) * c.hd;
      };
      for (int j = 0; j < len; ++j) {
        double d = 0;
        for (int i = 0; i < c.hd; ++i) d += double(f(q[size_t(t) * row + h * c.hd + i])) * kref[at(j) + i];
        sc[j] = d / std::sqrt(double(c.hd));
        mx = std::max(mx, sc[j]);
      }
      double sum = 0;
      for (double& s : sc) sum += (s = std::exp(s - mx));
      for (int i = 0; i < c.hd; ++i) {
        double o = 0;
        for (int j = 0; j < len; ++j) o += sc[j] * vref[at(j) + i];
        ref[(size_t(t) * c.nh + h) * c.hd + i] = o / sum;
      }
    }
  }
  EXPECT_LT(rel_err(out, ref), bound<E>(1e-2)) << type_name<E>() << " nh " << c.nh << " nkv " << c.nkv << " hd "
                                              << c.hd << " bs " << c.bs << " splits " << c.splits
                                              << (tiled ? " tiled" : "") << " kernel " << int(kernel);
  if (tiled) {
    // Row by row too: a wrong row of one short sequence hides in the norm of the whole output.
    for (int t = 0; t < T; ++t) {
      const size_t w = size_t(c.nh) * c.hd;
      std::vector<E> o(out.begin() + t * w, out.begin() + (t + 1) * w);
      std::vector<double> r(ref.begin() + t * w, ref.begin() + (t + 1) * w);
      ASSERT_LT(rel_err(o, r), bound<E>(2e-2, 5e-5)) << type_name<E>() << " tiled, token " << t << " position "
                                                     << pos[t] << " nh " << c.nh << " nkv " << c.nkv << " hd "
                                                     << c.hd << " bs " << c.bs;
    }
  }
}

void check_attention_both(const AttnCase& c, uint64_t seed) {
  check_attention<bf16>(c, seed);
  check_attention<float>(c, seed);
}

TEST(CudaKernels, PagedAttentionDecodeMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  // Decode: one query token per sequence; odd context lengths, one longer than a 256-token tile.
  check_attention_both({32, 32, 128, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, 1}, 10);
  check_attention_both({32, 32, 128, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, 5}, 11);
  check_attention_both({4, 2, 24, 16, {3, 45, 290}, {1, 1, 1}, 1}, 12);
  check_attention_both({4, 2, 24, 16, {3, 45, 290}, {1, 1, 1}, 16, 2 * 2 * 24}, 13);  // q inside a qkv row
  check_attention_both({8, 4, 8, 5, {7, 64, 129}, {1, 1, 1}, 3}, 14);
  check_attention_both({8, 1, 64, 7, {100, 33}, {1, 1}, 2}, 15);
}

TEST(CudaKernels, PagedAttentionPrefillMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  // Prefill (whole prompts) and chunked prefill (a chunk after cached tokens) mixed with a decode.
  check_attention_both({32, 32, 128, 16, {37, 300, 5}, {37, 20, 1}, 1}, 20);
  check_attention_both({4, 2, 24, 16, {61, 1, 300}, {61, 1, 33}, 1, 8}, 21);
  check_attention_both({8, 4, 8, 5, {23, 9}, {23, 4}, 2}, 22);
}

TEST(CudaKernels, PrefillTileAttentionMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  ASSERT_TRUE(ec::prefill_attention_supports_head_dim(64));
  ASSERT_TRUE(ec::prefill_attention_supports_head_dim(128));
  ASSERT_TRUE(ec::prefill_attention_supports_head_dim(24));
  ASSERT_FALSE(ec::prefill_attention_supports_head_dim(256));
  uint64_t seed = 300;
  // 64, 128: every thread busy; 24, 80: partial column groups and partial staging rounds.
  for (int hd : {64, 128, 24, 80}) {
    for (auto [nh, nkv] : {std::pair{8, 4}, std::pair{8, 1}, std::pair{4, 4}}) {
      for (int bs : {7, 16}) {
        // Whole prompts (lengths 1 .. 300, not multiples of the tile) with decodes among them (split 3).
        AttnCase whole{nh, nkv, hd, bs, {1, 5, 17, 40, 33, 100, 9, 300}, {1, 5, 17, 1, 33, 100, 1, 300}, 3};
        check_attention<bf16>(whole, seed, true);
        check_attention<float>(whole, seed++, true);
        // Chunked prefill: chunks starting at positions > 0 (the earlier context already cached), one of
        // them not tile-aligned and spanning several key tiles; a decode without splits.
        AttnCase chunked{nh, nkv, hd, bs, {70, 300, 129, 2}, {37, 20, 1, 2}, 1};
        check_attention<bf16>(chunked, seed, true);
        check_attention<float>(chunked, seed++, true);
      }
    }
  }
  // Prefill only (an empty decode list), MHA at 32 heads; head dim 8 (staging by 32 of 128 threads).
  check_attention<bf16>({32, 32, 128, 16, {65, 65, 16}, {65, 65, 16}, 1}, seed, true);
  check_attention<float>({32, 32, 128, 16, {65, 65, 16}, {65, 65, 16}, 1}, seed++, true);
  check_attention<bf16>({4, 2, 8, 5, {23, 50}, {23, 20}, 1}, seed, true);
  check_attention<float>({4, 2, 8, 5, {23, 50}, {23, 20}, 1}, seed++, true);
  // An fp8 cache: the tiles dequantize while staging (against the reference on the dequantized values), the
  // decode rows through the paged kernel's fp8 path or version 2's.
  for (int hd : {128, 24, 8}) {
    check_attention<bf16>({8, 4, hd, 16, {1, 5, 17, 40, 33, 100, 9, 300}, {1, 5, 17, 1, 33, 100, 1, 300}, 3}, seed++,
                          true, AttnKernel::kPagedFp8);
    check_attention<bf16>({8, 2, hd, 7, {70, 300, 129, 2}, {37, 20, 1, 2}, 1}, seed++, true, AttnKernel::kPagedFp8);
  }
  check_attention<bf16>({32, 32, 128, 16, {65, 65, 16, 200}, {65, 65, 16, 1}, 3}, seed++, true, AttnKernel::kDecodeFp8);
}

// Version 2 of the decode kernel (attention_decode.cu) on the decode cases of the paged kernel, in both
// storage types, with splits and token lists (a mixed step's decode rows), head dims 64 and 128; then over an
// fp8 cache against the reference on the dequantized values (the kernel's own error: bf16 rounding only).
TEST(CudaKernels, DecodeAttentionV2MatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  ASSERT_TRUE(ec::decode_attention_supports_head_dim(128));
  ASSERT_TRUE(ec::decode_attention_supports_head_dim(64));
  ASSERT_FALSE(ec::decode_attention_supports_head_dim(24));
  uint64_t seed = 500;
  for (AttnKernel k : {AttnKernel::kDecode, AttnKernel::kDecodeFp8}) {
    for (int splits : {1, 3, 16}) {
      // MHA at 32 heads; odd contexts, one past 2 x 256 tokens, one of a single token (empty splits).
      const AttnCase mha{32, 32, 128, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, splits};
      const AttnCase gqa{8, 2, 64, 7, {100, 33, 1000, 5}, {1, 1, 1, 1}, splits};
      check_attention<bf16>(mha, seed, false, k);
      check_attention<bf16>(gqa, seed + 1, false, k);
      if (k == AttnKernel::kDecode) {
        check_attention<float>(mha, seed, false, k);
        check_attention<float>(gqa, seed + 1, false, k);
      }
      seed += 2;
    }
    // As the backend runs a mixed step: prefill tiles then the decode rows through version 2 (bf16 cache).
    if (k == AttnKernel::kDecode) {
      check_attention<bf16>({8, 4, 128, 16, {37, 300, 1, 90}, {37, 20, 1, 1}, 3}, seed, true, k);
      check_attention<float>({8, 4, 64, 16, {37, 300, 1, 90}, {37, 20, 1, 1}, 3}, seed++, true, k);
    }
  }
  // A q row inside a wider qkv row (q_stride > nh*hd), with an fp8 cache.
  check_attention<bf16>({4, 2, 64, 16, {3, 45, 290}, {1, 1, 1}, 2, 2 * 2 * 64}, seed, false, AttnKernel::kDecodeFp8);
}

// The paged kernel over an fp8 cache: the head dims version 2 has no kernel for (tiny-llama's 24,
// stories260K's 8) and the ones it has, decode rows with splits and whole prompts (fp8 mode sends prompt
// tokens here too: no tiled prefill kernel), against the reference on the dequantized values.
TEST(CudaKernels, PagedAttentionFp8MatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  uint64_t seed = 700;
  for (int hd : {8, 24, 64, 128, 256}) {
    for (int splits : {1, 3}) {
      check_attention<bf16>({8, 2, hd, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, splits}, seed++, false,
                            AttnKernel::kPagedFp8);
    }
    check_attention<bf16>({4, 4, hd, 7, {37, 90, 1}, {37, 20, 1}, 1}, seed++, false, AttnKernel::kPagedFp8);
  }
  // A q row inside a wider qkv row, GQA 4:1.
  check_attention<bf16>({4, 1, 24, 16, {3, 45, 290}, {1, 1, 1}, 2, 2 * 24}, seed, false, AttnKernel::kPagedFp8);
  // Float activations cannot read an fp8 cache: a clear error, not garbage.
  EXPECT_THROW(check_attention<float>({4, 2, 24, 16, {5}, {1}, 1}, seed, false, AttnKernel::kPagedFp8),
               std::invalid_argument);
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

TEST(CudaKernels, RopeKvWriteFp8MatchesQuantizedFloat) {
  SKIP_WITHOUT_DEVICE();
  for (const auto& [hd, T] : {std::pair{128, 6}, {24, 9}, {8, 5}, {128, 3000}}) check_rope_kv_fp8(hd, T);
}

// The skinny GEMM (decode at batch 1..64) against float64: every m-tile count, M not a multiple of 16, f32 and
// bf16 outputs; and a row's result does not depend on M (the same row at M = 3 and M = 64 is bit-identical).
TEST(CudaKernels, SkinnyGemmMatchesFloat64) {
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
TEST(CudaKernels, OrderedGemmMatchesFloat64) {
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
TEST(CudaKernels, OrderedTunedGemmRowsDoNotDependOnM) {
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
TEST(CudaKernels, OrderedGemvRowsAreOrderedGemmsBits) {
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
TEST(CudaKernels, FastestTunedGemmMatchesFloat64) {
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

TEST(CudaKernels, GemvMatchesFloat64) {
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
TEST(CudaKernels, GemvUnitsMatchesFloat64) {
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
TEST(CudaKernels, GemvUnitsSmallMMatchesFloat64AndOneRow) {
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
TEST(CudaKernels, GemvMmaMatchesFloat64AndOneRow) {
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

TEST(CudaKernels, GemvSwigluMatchesFloat64AndUnfused) {
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

TEST(CudaKernels, GemvRmsNormMatchesFloat64AndUnfused) {
  SKIP_WITHOUT_DEVICE();
  for (bool d : {true, false}) {
    check_gemv_rmsnorm(77, 96, d);
    check_gemv_rmsnorm(1001, 1000, d);  // 125 chunks: threads past them hold nothing; a partial last unit
    check_gemv_rmsnorm(12288, 4096, d); // the 7B QKV shape
  }
  check_gemv_rmsnorm(300, 8192, true);  // every thread holds 4 chunks
  EXPECT_FALSE(ec::gemv_fused_supported(64, 8200, true));
}

TEST(CudaKernels, ArgmaxPicksLowestIndexOfMaximum) {
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

TEST(CudaKernels, FillUniformSameValuesInBothTypes) {
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
TEST(CudaKernels, SkippedWithoutCudaBuild) { GTEST_SKIP() << "built without LLM_ENABLE_CUDA"; }
#endif
