// test-deps: engine_internals
// The attention kernels (attention.cu's paged kernel, the tiled prefill kernel, decode attention version 2;
// bf16, float and fp8 caches) against a float64 reference: GQA, odd lengths and head dims, block tables with
// gaps, several context splits, mixed steps as the backend splits them. Outputs are poisoned (NaN) before
// each run. Skips when no CUDA device is present.
#include <gtest/gtest.h>

#ifdef LLM_HAVE_CUDA
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
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

double fp8_value(uint8_t byte) { return double(__half2float(__half(__nv_cvt_fp8_to_halfraw(byte, __NV_E4M3)))); }

// Every templated kernel runs in both storage types: bf16 (the fast path) against bf16-level bounds, float
// (the f32 reference mode) against ~1e-5, tight enough that only f32 arithmetic is left.

struct AttnCase {
  int nh, nkv, hd, bs;
  std::vector<int> ctx;    // context length of each sequence after this step
  std::vector<int> qlen;   // query tokens of each sequence (the last qlen positions)
  int splits;
  int q_pad = 0;           // q_stride = nh*hd + q_pad (the backend passes 0; a multiple of 8)
  int tokens_in_flight = 4;       // decode_attention's per-lane-group tokens (4 or 8)
  bool merge_in_kernel = false;   // the last split block merges (AttentionArgs::split_count)
  bool l2_prefetch = false;       // the kernel also prefetches a read-only range into L2 (the K cache here)
  int fp8_lane_bytes = 16;        // decode_attention's fp8 loads per lane (16 or 8)
  int ring_stages = 0;            // decode_attention's loads through a shared-memory ring (0, 2, 3, 4)
  int warps = 4;                  // decode_attention's warps per block (4, 8, 16)
  // The step's own K/V rows (each token's position) and q are written by rope_kv_write (an identity rotation
  // of q and of the cache's values) just before the attention on one stream, as the backend does; on device
  // those rows start as NaN, and the reference reads the cache as the kernels left it. Needs q_pad == 0.
  bool kv_by_kernel = false;
  bool kv_before_wait = false;    // AttentionArgs::kv_before_wait (decode rows only)
  // With kv_by_kernel: a random rotation table instead of the identity (the reference rotates q itself), and
  // the attention rotating q and writing the rows itself (AttentionArgs::qkv) instead of rope_kv_write.
  bool random_rope = false;
  bool fused_rope = false;
  bool prefill_mma = false;       // the prefill tiles through the tensor-core kernel (AttentionArgs::prefill_mma)
};

// Which kernel reads the cache: attention.cu's paged kernel, attention_decode.cu's (version 2) over the same
// cache, or either over an fp8 copy of it (bf16 activations; the reference then uses the dequantized values).
enum class AttnKernel { kPaged, kDecode, kDecodeFp8, kPagedFp8 };
bool reads_fp8(AttnKernel k) { return k == AttnKernel::kDecodeFp8 || k == AttnKernel::kPagedFp8; }

// tiled: the backend's split of a mixed step: every sequence with more than one query token through the
// prefill kernel (tiles of up to kPrefillTileQ tokens), the others through the paged kernel over a token
// list (with c.splits), both writing rows of the same output.
// `result`, when given, receives the output (after it is checked), so that callers can compare two ways of
// computing it bit for bit.
template <typename E>
void check_attention(const AttnCase& c, uint64_t seed, bool tiled = false, AttnKernel kernel = AttnKernel::kPaged,
                     std::vector<E>* result = nullptr) {
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
  // kv_by_kernel: the slot of each token's own row, and its inputs to rope_kv_write (q, k, v as f32).
  const int qkv_row = (c.nh + 2 * c.nkv) * c.hd;
  std::vector<int32_t> slots(T);
  std::vector<float> qkv;
  auto cache_row = [&](int32_t slot, int kvh) { return (size_t(slot / c.bs) * c.nkv + kvh) * c.bs + slot % c.bs; };
  DevBuf<E> dk(kc), dv(vc);
  DevBuf<uint8_t> dk8(k8), dv8(v8);
  DevBuf<float> dks(ks), dvs(vs);
  if (c.kv_by_kernel) {
    if (c.q_pad != 0) throw std::invalid_argument("kv_by_kernel needs q_pad == 0");
    qkv.resize(size_t(T) * qkv_row);
    auto kn = kc, vn = vc;
    auto k8n = k8, v8n = v8;
    auto ksn = ks, vsn = vs;
    for (int t = 0; t < T; ++t) {
      slots[t] = bt[bt_start[t] + pos[t] / c.bs] * c.bs + pos[t] % c.bs;
      for (int i = 0; i < c.nh * c.hd; ++i) qkv[size_t(t) * qkv_row + i] = f(q[size_t(t) * row + i]);
      for (int h = 0; h < c.nkv; ++h) {
        const size_t r = cache_row(slots[t], h);
        for (int i = 0; i < c.hd; ++i) {
          qkv[size_t(t) * qkv_row + (c.nh + h) * c.hd + i] = f(kc[r * c.hd + i]);
          qkv[size_t(t) * qkv_row + (c.nh + c.nkv + h) * c.hd + i] = f(vc[r * c.hd + i]);
          kn[r * c.hd + i] = vn[r * c.hd + i] = E(NAN);
          k8n[r * c.hd + i] = v8n[r * c.hd + i] = 0x7f;  // e4m3 NaN
        }
        ksn[r] = vsn[r] = NAN;
      }
    }
    dk.upload(kn), dv.upload(vn), dk8.upload(k8n), dv8.upload(v8n), dks.upload(ksn), dvs.upload(vsn);
  }
  DevBuf<E> dq(q), dout(size_t(T) * c.nh * c.hd);
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
  a.tokens_in_flight = c.tokens_in_flight;
  a.fp8_lane_bytes = c.fp8_lane_bytes;
  a.ring_stages = c.ring_stages;
  a.warps = c.warps;
  DevBuf<int32_t> dcount(std::vector<int32_t>(size_t(T) * c.nh, 0));
  if (c.merge_in_kernel) a.split_count = dcount.p;
  if (c.l2_prefetch) {
    a.l2_prefetch = dk.p;
    a.l2_prefetch_bytes = cache_n * sizeof(E);
  }
  if (reads_fp8(kernel)) {
    a.k_fp8 = dk8.p;
    a.v_fp8 = dv8.p;
    a.k_scale = dks.p;
    a.v_scale = dvs.p;
  }
  a.kv_before_wait = c.kv_before_wait;
  a.prefill_mma = c.prefill_mma;
  cudaStream_t stream = nullptr;
  // Destroyed on every way out, a refused launch's exception included.
  std::unique_ptr<CUstream_st, cudaError_t (*)(cudaStream_t)> own_stream(nullptr, cudaStreamDestroy);
  int max_pos = 0;
  for (int p : pos) max_pos = std::max(max_pos, p);
  std::vector<float2> rope(size_t(max_pos + 1) * c.hd / 2, make_float2(1.f, 0.f));
  if (c.random_rope) {
    std::mt19937_64 rr(seed ^ 0x9e3779b97f4a7c15ull);
    std::uniform_real_distribution<float> angle(-3.14159f, 3.14159f);
    for (float2& cs : rope) {
      const float th = angle(rr);
      cs = make_float2(std::cos(th), std::sin(th));
    }
  }
  DevBuf<float2> drope(rope);
  DevBuf<float> dqkv(qkv);
  DevBuf<int32_t> dslots(slots);
  DevBuf<E> dqk(size_t(T) * c.nh * c.hd);
  if (c.fused_rope) {
    CK(cudaStreamCreate(&stream));
    own_stream.reset(stream);
    a.q = nullptr;
    a.qkv = dqkv.p;
    a.q_stride = qkv_row;
    a.rope = drope.p;
    a.slots = dslots.p;
  } else if (c.kv_by_kernel) {
    CK(cudaStreamCreate(&stream));
    own_stream.reset(stream);
    a.q = dqk.p;
    if (reads_fp8(kernel)) {
      if constexpr (std::is_same_v<E, bf16>)
        ec::rope_kv_write_fp8(dqkv.p, dpos.p, dslots.p, drope.p, dqk.p, dk8.p, dv8.p, dks.p, dvs.p, T, c.nh, c.nkv,
                              c.hd, c.bs, stream);
    } else {
      ec::rope_kv_write<E>(dqkv.p, dpos.p, dslots.p, drope.p, dqk.p, dk.p, dv.p, T, c.nh, c.nkv, c.hd, c.bs, stream);
    }
  }
  auto decode = [&] {
    if (kernel == AttnKernel::kPaged || kernel == AttnKernel::kPagedFp8) ec::paged_attention(a, stream);
    else ec::decode_attention(a, stream);
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
    ec::paged_attention_prefill(a, dtiles.p, int(tiles.size()), stream);
    a.tokens = ddec.p;
    a.T = int(dec.size());
    decode();
    CK(cudaDeviceSynchronize());
  } else {
    decode();
    CK(cudaDeviceSynchronize());
  }
  const auto out = dout.download();
  if (result) *result = out;
  if (c.kv_by_kernel) {
    // The reference reads the cache as the kernels left it.
    const auto kd = dk.download(), vd = dv.download();
    const auto k8d = dk8.download(), v8d = dv8.download();
    const auto ksd = dks.download(), vsd = dvs.download();
    for (size_t i = 0; i < cache_n; ++i) {
      if (reads_fp8(kernel)) {
        kref[i] = fp8_value(k8d[i]) * ksd[i / c.hd];
        vref[i] = fp8_value(v8d[i]) * vsd[i / c.hd];
      } else {
        kref[i] = f(kd[i]), vref[i] = f(vd[i]);
      }
    }
  }
  if (c.merge_in_kernel) {
    // Every launch leaves its counters at 0 for the next one (graphs replay the same buffer).
    const auto counts = dcount.download();
    EXPECT_EQ(std::count(counts.begin(), counts.end(), 0), std::ptrdiff_t(counts.size())) << "split counters left set";
  }
  std::vector<double> ref(out.size());
  const int group = c.nh / c.nkv;
  // The q head the kernels read: as given, or (a random table) rotated from the f32 row as rope_kv_write does.
  std::vector<double> qh(c.hd);
  auto q_head = [&](int t, int h) {
    const int half = c.hd / 2;
    for (int i = 0; i < c.hd; ++i) {
      if (!(c.kv_by_kernel && c.random_rope)) {
        qh[i] = f(q[size_t(t) * row + h * c.hd + i]);
        continue;
      }
      const int j = i % half;
      const float* x = &qkv[size_t(t) * qkv_row + h * c.hd];
      const float2 cs = rope[size_t(pos[t]) * half + j];
      const double lo = x[j], hi = x[j + half];
      qh[i] = i < half ? lo * cs.x - hi * cs.y : hi * cs.x + lo * cs.y;
    }
  };
  for (int t = 0; t < T; ++t) {
    const int len = pos[t] + 1;
    for (int h = 0; h < c.nh; ++h) {
      const int kvh = h / group;
      q_head(t, h);
      std::vector<double> sc(len);
      double mx = -INFINITY;
      auto at = [&](int tok) {
        const int blk = bt[bt_start[t] + tok / c.bs];
        return ((size_t(blk) * c.nkv + kvh) * c.bs + tok % c.bs) * c.hd;
      };
      for (int j = 0; j < len; ++j) {
        double d = 0;
        for (int i = 0; i < c.hd; ++i) d += qh[i] * kref[at(j) + i];
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

TEST(CudaAttention, PagedAttentionDecodeMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  // Decode: one query token per sequence; odd context lengths, one longer than a 256-token tile.
  check_attention_both({32, 32, 128, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, 1}, 10);
  check_attention_both({32, 32, 128, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, 5}, 11);
  check_attention_both({4, 2, 24, 16, {3, 45, 290}, {1, 1, 1}, 1}, 12);
  check_attention_both({4, 2, 24, 16, {3, 45, 290}, {1, 1, 1}, 16, 2 * 2 * 24}, 13);  // q inside a qkv row
  check_attention_both({8, 4, 8, 5, {7, 64, 129}, {1, 1, 1}, 3}, 14);
  check_attention_both({8, 1, 64, 7, {100, 33}, {1, 1}, 2}, 15);
}

TEST(CudaAttention, PagedAttentionPrefillMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  // Prefill (whole prompts) and chunked prefill (a chunk after cached tokens) mixed with a decode.
  check_attention_both({32, 32, 128, 16, {37, 300, 5}, {37, 20, 1}, 1}, 20);
  check_attention_both({4, 2, 24, 16, {61, 1, 300}, {61, 1, 33}, 1, 8}, 21);
  check_attention_both({8, 4, 8, 5, {23, 9}, {23, 4}, 2}, 22);
}

TEST(CudaAttention, PrefillTileAttentionMatchesFloat64) {
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

// The tensor-core prefill kernel (attention_prefill_mma.cu) on the tiled kernel's cases: bf16 activations over a
// bf16 cache and an fp8 one, whole prompts with decodes among them and chunks after cached tokens, MHA and GQA,
// block sizes that do and do not divide its 32-key tiles, every head dim it takes; the same row-by-row bounds.
TEST(CudaAttention, PrefillTileMmaAttentionMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  for (int hd : {16, 48, 64, 80, 128}) ASSERT_TRUE(ec::prefill_attention_mma_supports_head_dim(hd)) << hd;
  for (int hd : {8, 24, 136, 256}) ASSERT_FALSE(ec::prefill_attention_mma_supports_head_dim(hd)) << hd;
  uint64_t seed = 400;
  for (int hd : {128, 64, 16, 80}) {
    for (auto [nh, nkv] : {std::pair{8, 4}, std::pair{8, 1}, std::pair{4, 4}}) {
      for (int bs : {7, 16}) {
        AttnCase whole{nh, nkv, hd, bs, {1, 5, 17, 40, 33, 100, 9, 300}, {1, 5, 17, 1, 33, 100, 1, 300}, 3};
        AttnCase chunked{nh, nkv, hd, bs, {70, 300, 129, 2}, {37, 20, 1, 2}, 1};
        whole.prefill_mma = chunked.prefill_mma = true;
        for (AttnKernel k : {AttnKernel::kPaged, AttnKernel::kPagedFp8}) {
          check_attention<bf16>(whole, seed++, true, k);
          check_attention<bf16>(chunked, seed++, true, k);
        }
      }
    }
  }
  // The mixed step's shape (MHA at 32 heads, 65-token prompts) and a long prompt in chunks of 512 after 1,000
  // cached tokens, with the decode rows through version 2; head dim 48 (three 16-dim value groups).
  AttnCase mixed{32, 32, 128, 16, {65, 65, 16, 200}, {65, 65, 16, 1}, 3};
  AttnCase longp{8, 8, 128, 16, {1512, 3}, {512, 1}, 2};
  AttnCase odd{4, 2, 48, 5, {23, 50, 1}, {23, 20, 1}, 1};
  mixed.prefill_mma = longp.prefill_mma = odd.prefill_mma = true;
  check_attention<bf16>(mixed, seed++, true, AttnKernel::kDecode);
  check_attention<bf16>(mixed, seed++, true, AttnKernel::kDecodeFp8);
  check_attention<bf16>(longp, seed++, true, AttnKernel::kDecode);
  check_attention<bf16>(odd, seed++, true);
  check_attention<bf16>(odd, seed++, true, AttnKernel::kPagedFp8);
  // A head dim it has no kernel for is refused by name when asked for directly.
  ec::AttentionArgs<bf16> a;
  a.hd = 24;
  const int32_t tile = 0;
  EXPECT_THROW(ec::paged_attention_prefill_mma(a, &tile, 1, nullptr), std::invalid_argument);
}

// Version 2 of the decode kernel (attention_decode.cu) on the decode cases of the paged kernel, in both
// storage types, with splits and token lists (a mixed step's decode rows), head dims 64 and 128; then over an
// fp8 cache against the reference on the dequantized values (the kernel's own error: bf16 rounding only).
TEST(CudaAttention, DecodeAttentionV2MatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  ASSERT_TRUE(ec::decode_attention_supports_head_dim(128));
  ASSERT_TRUE(ec::decode_attention_supports_head_dim(64));
  ASSERT_FALSE(ec::decode_attention_supports_head_dim(24));
  uint64_t seed = 500;
  for (AttnKernel k : {AttnKernel::kDecode, AttnKernel::kDecodeFp8}) {
    for (int splits : {1, 3, 16}) {
      // MHA at 32 heads; odd contexts, one past 2 x 256 tokens, one of a single token (empty splits). Four
      // and eight tokens in flight per lane group (the default and deterministic modes' values).
      const int r = splits == 3 ? 8 : 4;
      const AttnCase mha{32, 32, 128, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, splits, 0, r};
      const AttnCase gqa{8, 2, 64, 7, {100, 33, 1000, 5}, {1, 1, 1, 1}, splits, 0, 12 - r};
      check_attention<bf16>(mha, seed, false, k);
      check_attention<bf16>(gqa, seed + 1, false, k);
      if (k == AttnKernel::kDecodeFp8) {  // the narrow fp8 loads: 8 bytes a lane, bf16's lanes per token
        AttnCase narrow_mha = mha, narrow_gqa = gqa;
        narrow_mha.fp8_lane_bytes = narrow_gqa.fp8_lane_bytes = 8;
        check_attention<bf16>(narrow_mha, seed, false, k);
        check_attention<bf16>(narrow_gqa, seed + 1, false, k);
      }
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

// The last split block's merge (AttentionArgs::split_count) against the combine kernel: the same sums in the
// same order, so the same bits, for both decode kernels and the fp8 cache, with empty splits (a one-token
// context at 16 splits) and a token list (a mixed step's decode rows); the counters end at 0 (checked inside),
// and so does a second launch over the same counters. Prefetching a range into L2 changes no bit either.
TEST(CudaAttention, SplitMergeInKernelGivesTheCombineKernelsBits) {
  SKIP_WITHOUT_DEVICE();
  uint64_t seed = 900;
  for (AttnKernel k : {AttnKernel::kPaged, AttnKernel::kDecode, AttnKernel::kDecodeFp8, AttnKernel::kPagedFp8}) {
    for (int splits : {2, 3, 16}) {
      AttnCase c{32, 32, 128, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, splits};
      std::vector<bf16> combined, merged, prefetched;
      check_attention<bf16>(c, seed, false, k, &combined);
      c.merge_in_kernel = true;
      check_attention<bf16>(c, seed, false, k, &merged);
      c.l2_prefetch = true;
      check_attention<bf16>(c, seed, false, k, &prefetched);
      ASSERT_EQ(combined.size(), merged.size());
      EXPECT_EQ(std::memcmp(combined.data(), merged.data(), combined.size() * sizeof(bf16)), 0)
          << "kernel " << int(k) << " splits " << splits;
      EXPECT_EQ(std::memcmp(combined.data(), prefetched.data(), combined.size() * sizeof(bf16)), 0)
          << "kernel " << int(k) << " splits " << splits << " with the L2 prefetch";
      ++seed;
    }
  }
  // float activations, and a mixed step's decode list after the prefill tiles.
  AttnCase c{8, 4, 64, 16, {37, 300, 1, 90}, {37, 20, 1, 1}, 3};
  std::vector<float> combined, merged;
  check_attention<float>(c, seed, true, AttnKernel::kDecode, &combined);
  c.merge_in_kernel = true;
  check_attention<float>(c, seed, true, AttnKernel::kDecode, &merged);
  ASSERT_EQ(combined.size(), merged.size());
  EXPECT_EQ(std::memcmp(combined.data(), merged.data(), combined.size() * sizeof(float)), 0) << "float, tiled";
}

// decode_attention's loads through a ring of shared-memory stages (cp.async, AttentionArgs::ring_stages) take
// the same tokens in the same order as its loads into registers: the same bits, for the bf16 and fp8 caches, at
// 4 and 8 warps, 4 and 8 tokens in flight, with splits (empty ones included), merged in the kernel or not, over
// a token list after prefill tiles; each result is also checked against float64 inside check_attention. The
// caches without 16-byte lane loads (float, fp8 at 8 bytes a lane) refuse a ring with an error, and so does a
// ring larger than a block's shared memory (the first run found the opt-in missing at exactly 48 KB).
TEST(CudaAttention, DecodeAttentionRingGivesTheRegisterPathsBits) {
  SKIP_WITHOUT_DEVICE();
  int dev = 0, smem_optin = 0;
  CK(cudaGetDevice(&dev));
  CK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  // The ring's bytes a block as attention_decode.cu lays them out (16-byte K and V slices of every lane, per
  // token in flight and stage, then the fp8 scales of each lane group), plus its static merge arrays.
  auto ring_bytes = [](const AttnCase& c, AttnKernel k) {
    const int lanes_per_token = c.hd / (reads_fp8(k) ? 16 : 8), groups = c.warps * (32 / lanes_per_token);
    return size_t(c.ring_stages) * c.tokens_in_flight * 2 *
               (size_t(c.warps) * 32 * 16 + (reads_fp8(k) ? groups * sizeof(float) : 0)) +
           2 * groups * sizeof(float);
  };
  uint64_t seed = 1300;
  for (AttnKernel k : {AttnKernel::kDecode, AttnKernel::kDecodeFp8}) {
    for (int splits : {1, 3, 16}) {
      for (int warps : {4, 8}) {
        const int r = splits == 3 ? 8 : 4;
        AttnCase mha{32, 32, 128, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, splits, 0, r};
        AttnCase gqa{8, 2, 64, 7, {100, 33, 1000, 5}, {1, 1, 1, 1}, splits, 0, 12 - r};
        mha.warps = gqa.warps = warps;
        mha.merge_in_kernel = splits == 16;
        for (AttnCase* c : {&mha, &gqa}) {
          std::vector<bf16> regs, ring;
          c->ring_stages = 0;
          check_attention<bf16>(*c, seed, false, k, &regs);
          for (int st : {2, 3, 4}) {
            c->ring_stages = st;
            if (ring_bytes(*c, k) > size_t(smem_optin)) {  // 8 warps x 8 tokens x 4 stages: 256 KB and more
              EXPECT_THROW(check_attention<bf16>(*c, seed, false, k, &ring), std::invalid_argument)
                  << "a ring past the device's shared memory: " << ring_bytes(*c, k) << " bytes";
              continue;
            }
            check_attention<bf16>(*c, seed, false, k, &ring);
            ASSERT_EQ(regs.size(), ring.size());
            EXPECT_EQ(std::memcmp(regs.data(), ring.data(), regs.size() * sizeof(bf16)), 0)
                << "kernel " << int(k) << " hd " << c->hd << " splits " << splits << " warps " << warps << " tokens "
                << c->tokens_in_flight << " ring " << st;
          }
          ++seed;
        }
      }
    }
  }
  // A mixed step's decode rows after the prefill tiles (bf16 cache).
  AttnCase c{8, 4, 128, 16, {37, 300, 1, 90}, {37, 20, 1, 1}, 3};
  std::vector<bf16> regs, ring;
  check_attention<bf16>(c, seed, true, AttnKernel::kDecode, &regs);
  c.ring_stages = 3;
  check_attention<bf16>(c, seed, true, AttnKernel::kDecode, &ring);
  ASSERT_EQ(regs.size(), ring.size());
  EXPECT_EQ(std::memcmp(regs.data(), ring.data(), regs.size() * sizeof(bf16)), 0) << "tiled";
  AttnCase f32{4, 2, 64, 16, {5, 40}, {1, 1}, 1};
  f32.ring_stages = 2;
  EXPECT_THROW(check_attention<float>(f32, seed, false, AttnKernel::kDecode), std::invalid_argument);
  AttnCase narrow{4, 2, 64, 16, {5, 40}, {1, 1}, 1};
  narrow.ring_stages = 2;
  narrow.fp8_lane_bytes = 8;
  EXPECT_THROW(check_attention<bf16>(narrow, seed, false, AttnKernel::kDecodeFp8), std::invalid_argument);
}

// The decode cases the load-path tests share: MHA at head dim 128, and GQA 4:1 at head dim 64 with block size 7,
// whose splits end at a row's new token (lengths 1, 5, 33, 100, 1000); merged in the kernel at 16 splits.
std::vector<AttnCase> new_token_cases(int splits) {
  AttnCase mha{32, 32, 128, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, splits};
  AttnCase gqa{8, 2, 64, 7, {100, 33, 1000, 5, 1}, {1, 1, 1, 1, 1}, splits, 0, 8};
  mha.merge_in_kernel = splits == 16;
  return {mha, gqa};
}

// check_attention (against float64) of c, then of c after `change`: the two outputs must be the same bits.
template <typename E, typename F>
void expect_same_bits(AttnCase c, uint64_t seed, AttnKernel k, bool tiled, F change, const std::string& what) {
  std::vector<E> before, after;
  check_attention<E>(c, seed, tiled, k, &before);
  change(c);
  check_attention<E>(c, seed, tiled, k, &after);
  ASSERT_EQ(before.size(), after.size());
  EXPECT_EQ(std::memcmp(before.data(), after.data(), before.size() * sizeof(E)), 0) << what;
}

// decode_attention with AttentionArgs::kv_before_wait issues the K/V loads of its first iterations before it
// waits on the kernel before it, here rope_kv_write writing each row's new K/V (NaN on the device until then)
// and q, launched just before it on one stream as in the backend: the same bits as loading after the wait and
// float64's result on the cache as left, in both load paths, bf16 and fp8 caches, with splits that end at a
// row's new token, merged in the kernel or not, and over a mixed step's decode list after prefill tiles whose
// rows the same kernel writes.
TEST(CudaAttention, DecodeAttentionLoadsBeforeTheWaitGiveTheSameBits) {
  SKIP_WITHOUT_DEVICE();
  uint64_t seed = 1700;
  auto early = [](AttnCase& c) { c.kv_before_wait = true; };
  for (AttnKernel k : {AttnKernel::kDecode, AttnKernel::kDecodeFp8}) {
    for (int ring : {0, 3}) {
      for (int splits : {1, 3, 16}) {
        for (AttnCase c : new_token_cases(splits)) {
          c.ring_stages = ring;
          c.kv_by_kernel = true;
          expect_same_bits<bf16>(c, seed++, k, false, early,
                                 "kernel " + std::to_string(int(k)) + " hd " + std::to_string(c.hd) + " splits " +
                                     std::to_string(splits) + " ring " + std::to_string(ring));
        }
      }
    }
  }
  AttnCase c{8, 4, 128, 16, {37, 300, 1, 90}, {37, 20, 1, 1}, 3};
  c.kv_by_kernel = true;
  for (int ring : {0, 3}) {
    c.ring_stages = ring;
    expect_same_bits<bf16>(c, seed, AttnKernel::kDecode, true, early, "tiled, ring " + std::to_string(ring));
  }
  // float activations (register path only).
  AttnCase f32{8, 2, 64, 7, {100, 33, 1000, 5}, {1, 1, 1, 1}, 3};
  f32.kv_by_kernel = f32.kv_before_wait = true;
  check_attention<float>(f32, seed, false, AttnKernel::kDecode);
}

// decode_attention with the RoPE and K/V write fused in (AttentionArgs::qkv): q rotated from the QKV GEMM's f32
// row and each row's new K/V written by the split that holds it, against rope_kv_write followed by the
// attention on the same inputs and a random rotation table: the same bits, and float64's result (q rotated in
// float64, the cache as left); both load paths, with and without the early loads, MHA and GQA (every block of a
// kv head's group writes the same row), splits ending at a new token, float activations too. An fp8 cache
// refuses it with an error.
TEST(CudaAttention, DecodeAttentionFusedRopeGivesRopeKvWritesBits) {
  SKIP_WITHOUT_DEVICE();
  uint64_t seed = 1900;
  auto fuse = [](AttnCase& c) { c.fused_rope = true; };
  for (int ring : {0, 3}) {
    for (bool early : {false, true}) {
      for (int splits : {1, 3, 16}) {
        for (AttnCase c : new_token_cases(splits)) {
          c.ring_stages = ring;
          c.kv_by_kernel = c.random_rope = true;
          c.kv_before_wait = early;
          expect_same_bits<bf16>(c, seed++, AttnKernel::kDecode, false, fuse,
                                 "hd " + std::to_string(c.hd) + " splits " + std::to_string(splits) + " ring " +
                                     std::to_string(ring) + " early " + std::to_string(early));
        }
      }
    }
  }
  AttnCase f32{8, 2, 64, 7, {100, 33, 1000, 5}, {1, 1, 1, 1}, 3};
  f32.kv_by_kernel = f32.random_rope = true;
  expect_same_bits<float>(f32, seed, AttnKernel::kDecode, false, fuse, "float");
  AttnCase fp8{8, 2, 64, 7, {100, 33}, {1, 1}, 1};
  fp8.kv_by_kernel = fp8.fused_rope = true;
  EXPECT_THROW(check_attention<bf16>(fp8, seed, false, AttnKernel::kDecodeFp8), std::invalid_argument);
}

// The paged kernel over an fp8 cache: the head dims version 2 has no kernel for (tiny-llama's 24,
// stories260K's 8) and the ones it has, decode rows with splits and whole prompts (prompts take it with
// LLM_CUDA_PREFILL_KERNEL=0 and at head dim 256), against the reference on the dequantized values.
TEST(CudaAttention, PagedAttentionFp8MatchesFloat64) {
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

}  // namespace

#else
TEST(CudaAttention, SkippedWithoutCudaBuild) { GTEST_SKIP() << "built without LLM_ENABLE_CUDA"; }
#endif
