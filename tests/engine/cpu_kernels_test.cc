// test-deps: engine_internals
// Each CPU kernel against a plain float64 reference on random inputs: rmsnorm, RoPE (half pairing),
// SiLU*up, and paged attention with GQA, odd lengths, odd block size, scattered block ids and chunked prefill.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cpu/cpu_kernels.h"

namespace {

using namespace engine;
using namespace engine::cpu;

std::vector<float> randn(size_t n, std::mt19937& rng, float sd = 1.0f) {
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

/// numpy.allclose's rule against a float64 reference.
void expect_close(const std::vector<float>& got, const std::vector<double>& want, double rtol, double atol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_LE(std::fabs(got[i] - want[i]), atol + rtol * std::fabs(want[i])) << "element " << i;
}

TEST(CpuKernels, RmsNormMatchesFloat64) {
  std::mt19937 rng(1);
  for (int dim : {1, 37, 256, 1000}) {
    const int T = 5;
    const auto x = randn(size_t(T) * dim, rng, 3.0f), w = randn(dim, rng);
    std::vector<float> out(x.size());
    rmsnorm(out.data(), x.data(), w.data(), T, dim, 1e-5f);
    std::vector<double> ref(x.size());
    for (int t = 0; t < T; ++t) {
      double ss = 0;
      for (int i = 0; i < dim; ++i) ss += double(x[t * dim + i]) * x[t * dim + i];
      const double r = 1.0 / std::sqrt(ss / dim + 1e-5);
      for (int i = 0; i < dim; ++i) ref[t * dim + i] = w[i] * x[t * dim + i] * r;
    }
    expect_close(out, ref, 1e-5, 1e-6);
    std::vector<float> in_place = x;  // out may alias x
    rmsnorm(in_place.data(), in_place.data(), w.data(), T, dim, 1e-5f);
    EXPECT_EQ(in_place, out);
  }
}

TEST(CpuKernels, RopeHalfPairingMatchesFloat64) {
  std::mt19937 rng(2);
  for (int hd : {8, 24, 128}) {
    for (float theta : {10000.0f, 500000.0f}) {
      const int n_heads = 3, max_pos = 3000;
      RopeTable table;
      table.init(hd, max_pos, theta);
      for (int pos : {0, 1, 17, 511, 2999}) {
        auto v = randn(size_t(n_heads) * hd, rng);
        std::vector<double> ref(v.size());
        for (int h = 0; h < n_heads; ++h)
          for (int i = 0; i < hd / 2; ++i) {
            const double a = double(pos) * std::pow(double(theta), -2.0 * i / hd);
            const double x0 = v[h * hd + i], x1 = v[h * hd + hd / 2 + i];
            ref[h * hd + i] = x0 * std::cos(a) - x1 * std::sin(a);
            ref[h * hd + hd / 2 + i] = x1 * std::cos(a) + x0 * std::sin(a);
          }
        rope(v.data(), n_heads, hd, table.cos_at(pos), table.sin_at(pos));
        // The table follows transformers (f32 frequencies and angles): ~pos * 6e-8 rad from the exact angle.
        expect_close(v, ref, 1e-5, 1e-6 + 4e-7 * pos);
      }
    }
  }
}

TEST(CpuKernels, SiluMulMatchesFloat64) {
  std::mt19937 rng(3);
  const int T = 3, hidden = 53;
  const auto gu = randn(size_t(T) * 2 * hidden, rng, 4.0f);
  std::vector<float> out(size_t(T) * hidden);
  silu_mul(out.data(), gu.data(), T, hidden);
  std::vector<double> ref(out.size());
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < hidden; ++i) {
      const double g = gu[t * 2 * hidden + i], u = gu[t * 2 * hidden + hidden + i];
      ref[t * hidden + i] = g / (1.0 + std::exp(-g)) * u;
    }
  expect_close(out, ref, 1e-5, 1e-6);
}

// ---------------------------------------------------------------- paged attention

struct AttnSeq {
  int context_len;  // after this step
  int query_len;    // tokens of this step (the last query_len positions)
};

/// Random dense K/V/Q per sequence, the paged cache filled through write_kv (for all positions, in the chunk
/// sizes of `chunks`), and paged_attention's output for the final step compared with a float64 causal GQA
/// attention over the dense tensors.
void check_paged_attention(const std::vector<AttnSeq>& seqs, int n_heads, int n_kv, int hd, int block_size,
                           int prefill_chunk, uint32_t seed) {
  std::mt19937 rng(seed);
  const int kvd = n_kv * hd, qd = n_heads * hd, group = n_heads / n_kv;
  KvLayout kv;
  kv.block_size = block_size;
  kv.n_kv_heads = n_kv;
  kv.head_dim = hd;
  // Scattered, shuffled block ids from a pool with spare blocks.
  int total_blocks = 0;
  for (const auto& s : seqs) total_blocks += (s.context_len + block_size - 1) / block_size;
  std::vector<int32_t> ids(total_blocks + 5);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<float> k_pool(ids.size() * block_size * kvd, NAN), v_pool(k_pool.size(), NAN);  // unwritten = NaN

  std::vector<std::vector<float>> K, V, Q;  // per sequence, [context_len, kvd] / [context_len, qd]
  std::vector<std::vector<int32_t>> tables;
  size_t next = 0;
  for (const auto& s : seqs) {
    K.push_back(randn(size_t(s.context_len) * kvd, rng));
    V.push_back(randn(size_t(s.context_len) * kvd, rng));
    Q.push_back(randn(size_t(s.context_len) * qd, rng, 2.0f));
    tables.emplace_back(ids.begin() + next, ids.begin() + next + (s.context_len + block_size - 1) / block_size);
    next += tables.back().size();
  }
  // Earlier positions enter the cache in prefill chunks (one write_kv per chunk and sequence), as an engine
  // would over several steps; the final step's tokens are written by the batched step below.
  for (size_t si = 0; si < seqs.size(); ++si) {
    const int before = seqs[si].context_len - seqs[si].query_len;
    for (int start = 0; start < before; start += prefill_chunk) {
      const int n = std::min(prefill_chunk, before - start);
      StepBatch b;
      b.block_tables = tables[si];
      SeqSlice s;
      s.query_len = n;
      s.context_len = start + n;
      s.num_blocks = int(tables[si].size());
      b.seqs = {s};
      for (int j = 0; j < n; ++j) b.tokens.push_back(0), b.positions.push_back(start + j);
      write_kv(k_pool.data(), v_pool.data(), kv, b, K[si].data() + size_t(start) * kvd,
               V[si].data() + size_t(start) * kvd, kvd);
    }
  }
  // The step under test: every sequence's last query_len tokens in one batch.
  StepBatch b;
  std::vector<float> q, k, v;
  for (size_t si = 0; si < seqs.size(); ++si) {
    SeqSlice s;
    s.query_start = b.num_tokens();
    s.query_len = seqs[si].query_len;
    s.context_len = seqs[si].context_len;
    s.block_table_start = int(b.block_tables.size());
    s.num_blocks = int(tables[si].size());
    b.block_tables.insert(b.block_tables.end(), tables[si].begin(), tables[si].end());
    b.seqs.push_back(s);
    for (int p = s.context_len - s.query_len; p < s.context_len; ++p) {
      b.tokens.push_back(0);
      b.positions.push_back(p);
      q.insert(q.end(), Q[si].begin() + size_t(p) * qd, Q[si].begin() + size_t(p + 1) * qd);
      k.insert(k.end(), K[si].begin() + size_t(p) * kvd, K[si].begin() + size_t(p + 1) * kvd);
      v.insert(v.end(), V[si].begin() + size_t(p) * kvd, V[si].begin() + size_t(p + 1) * kvd);
    }
  }
  write_kv(k_pool.data(), v_pool.data(), kv, b, k.data(), v.data(), kvd);
  std::vector<float> out(size_t(b.num_tokens()) * qd, NAN);
  AttentionScratch scratch;
  paged_attention(out.data(), q.data(), qd, k_pool.data(), v_pool.data(), kv, n_heads, b, scratch);

  std::vector<double> ref(out.size());
  int t = 0;
  for (size_t si = 0; si < seqs.size(); ++si)
    for (int p = seqs[si].context_len - seqs[si].query_len; p < seqs[si].context_len; ++p, ++t)
      for (int h = 0; h < n_heads; ++h) {
        const int kh = h / group;
        std::vector<double> sc(p + 1);
        double mx = -INFINITY;
        for (int j = 0; j <= p; ++j) {
          double dot = 0;
          for (int d = 0; d < hd; ++d) dot += double(Q[si][size_t(p) * qd + h * hd + d]) * K[si][size_t(j) * kvd + kh * hd + d];
          sc[j] = dot / std::sqrt(double(hd));
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (auto& x : sc) sum += (x = std::exp(x - mx));
        for (int d = 0; d < hd; ++d) {
          double o = 0;
          for (int j = 0; j <= p; ++j) o += sc[j] / sum * V[si][size_t(j) * kvd + kh * hd + d];
          ref[size_t(t) * qd + h * hd + d] = o;
        }
      }
  expect_close(out, ref, 1e-4, 1e-5);
}

TEST(CpuKernels, PagedAttentionDecodesWithGqa) {
  // Single-token decodes at odd context lengths, 8 query heads over 2 KV heads, block size 5.
  check_paged_attention({{1, 1}, {7, 1}, {23, 1}, {40, 1}, {16, 1}}, 8, 2, 16, 5, 1000, 11);
}

TEST(CpuKernels, PagedAttentionPrefillAndChunksMixedWithDecodes) {
  // A whole prompt (query_len = context_len), a chunk continuing a prompt, and decodes in one step;
  // earlier tokens were written in chunks of 3.
  check_paged_attention({{13, 13}, {29, 6}, {9, 1}, {33, 4}}, 6, 3, 12, 4, 3, 12);
}

TEST(CpuKernels, PagedAttentionMultiHeadAndSingleKvHead) {
  check_paged_attention({{50, 50}, {17, 1}}, 4, 4, 32, 16, 7, 13);  // MHA
  check_paged_attention({{31, 2}, {2, 2}}, 8, 1, 8, 3, 5, 14);      // MQA
}

TEST(CpuKernels, PagedAttentionLongContextManyThreads) {
  // Enough work that the parallel path is taken.
  check_paged_attention({{300, 1}, {257, 1}, {129, 64}, {200, 1}}, 8, 4, 64, 16, 50, 15);
}

}  // namespace
