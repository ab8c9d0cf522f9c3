// The attention kernels' float64 check (cuda_attention_test, cuda_attention_prefill_test): one case (heads, head
// dim, block size, each sequence's context and query tokens, splits and the kernels' options) is laid out in a
// paged cache with shuffled block tables, run through the kernel asked for (the paged kernel, decode attention
// version 2, either over an fp8 copy of the cache; with `tiled`, the backend's split of a mixed step: prompt
// slices through the prefill tile kernel, the rest through the decode kernel over a token list), and compared
// with a float64 softmax over the same cache values, as a whole and, when tiled, row by row.
#pragma once

#ifdef LLM_HAVE_CUDA
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/cuda/kernels.h"
#include "support/cuda_test_util.h"

namespace cuda_test {

inline double fp8_value(uint8_t byte) { return double(__half2float(__half(__nv_cvt_fp8_to_halfraw(byte, __NV_E4M3)))); }

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
  int prefill_mma = 0;            // prefill tiles through the tensor-core kernel with 1 or 4 warps (prefill_mma_warps)
};

// Which kernel reads the cache: attention.cu's paged kernel, attention_decode.cu's (version 2) over the same
// cache, or either over an fp8 copy of it (bf16 activations; the reference then uses the dequantized values).
enum class AttnKernel { kPaged, kDecode, kDecodeFp8, kPagedFp8 };
inline bool reads_fp8(AttnKernel k) { return k == AttnKernel::kDecodeFp8 || k == AttnKernel::kPagedFp8; }

// tiled: the backend's split of a mixed step: every sequence with more than one query token through the
// prefill kernel (tiles of up to prefill_tile_queries tokens), the others through the paged kernel over a token
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
  engine::cuda::AttentionArgs<E> a;
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
  a.prefill_mma_warps = c.prefill_mma;
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
        engine::cuda::rope_kv_write_fp8(dqkv.p, dpos.p, dslots.p, drope.p, dqk.p, dk8.p, dv8.p, dks.p, dvs.p, T, c.nh, c.nkv,
                              c.hd, c.bs, stream);
    } else {
      engine::cuda::rope_kv_write<E>(dqkv.p, dpos.p, dslots.p, drope.p, dqk.p, dk.p, dv.p, T, c.nh, c.nkv, c.hd, c.bs, stream);
    }
  }
  auto decode = [&] {
    if (kernel == AttnKernel::kPaged || kernel == AttnKernel::kPagedFp8) engine::cuda::paged_attention(a, stream);
    else engine::cuda::decode_attention(a, stream);
  };
  std::vector<int32_t> tiles, dec;
  // The backend's tile size for this dispatch: 16 tokens, or 16 x the tensor-core kernel's warps.
  const int tile_q = engine::cuda::prefill_tile_queries(c.prefill_mma, std::is_same_v<E, bf16>, c.hd);
  if (tiled) {
    int t = 0;
    for (int s = 0; s < nseq; ++s) {
      if (c.qlen[s] > 1) {
        for (int j0 = 0; j0 < c.qlen[s]; j0 += tile_q)
          tiles.push_back(engine::cuda::prefill_tile(t + j0, std::min(tile_q, c.qlen[s] - j0)));
      } else {
        for (int j = 0; j < c.qlen[s]; ++j) dec.push_back(t + j);
      }
      t += c.qlen[s];
    }
    // The launch order of the backend: prefill tiles, then the decode list.
    DevBuf<int32_t> dtiles(tiles), ddec(dec);
    engine::cuda::paged_attention_prefill(a, dtiles.p, int(tiles.size()), stream);
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

inline void check_attention_both(const AttnCase& c, uint64_t seed) {
  check_attention<bf16>(c, seed);
  check_attention<float>(c, seed);
}

}  // namespace cuda_test
#endif
