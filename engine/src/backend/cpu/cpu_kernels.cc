// Float32 kernels of the CPU backend. Loops over tokens/heads run on OpenMP threads; inner loops use
// `omp simd` reductions so the compiler may vectorize the sums without -ffast-math.
#include "backend/cpu/cpu_kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace engine::cpu {

bool cpu_has_avx2_fma() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
#else
  return false;
#endif
}

bool cpu_has_avx512f() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
#else
  return false;
#endif
}

void rmsnorm(float* out, const float* x, const float* w, int T, int dim, float eps) {
#pragma omp parallel for schedule(static) if (int64_t(T) * dim > (1 << 16))
  for (int t = 0; t < T; ++t) {
    const float* xr = x + int64_t(t) * dim;
    float* o = out + int64_t(t) * dim;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int i = 0; i < dim; ++i) ss += xr[i] * xr[i];
    const float r = 1.0f / std::sqrt(ss / float(dim) + eps);
    for (int i = 0; i < dim; ++i) o[i] = w[i] * (xr[i] * r);
  }
}

void RopeTable::init(int head_dim, int max_pos_, float theta) {
  half = head_dim / 2;
  max_pos = max_pos_;
  cos.assign(size_t(max_pos) * half, 0.0f);
  sin.assign(size_t(max_pos) * half, 0.0f);
  std::vector<float> inv(half);
  for (int i = 0; i < half; ++i) inv[i] = 1.0f / std::pow(theta, float(2 * i) / float(head_dim));
  for (int p = 0; p < max_pos; ++p)
    for (int i = 0; i < half; ++i) {
      const float angle = float(p) * inv[i];
      cos[size_t(p) * half + i] = float(std::cos(double(angle)));
      sin[size_t(p) * half + i] = float(std::sin(double(angle)));
    }
}

void rope(float* v, int n_heads, int hd, const float* c, const float* s) {
  const int half = hd / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* a = v + int64_t(h) * hd;
    float* b = a + half;
#pragma omp simd
    for (int i = 0; i < half; ++i) {
      const float x0 = a[i], x1 = b[i];
      a[i] = x0 * c[i] - x1 * s[i];
      b[i] = x1 * c[i] + x0 * s[i];
    }
  }
}

void silu_mul(float* out, const float* gate_up, int T, int hidden) {
#pragma omp parallel for schedule(static) if (int64_t(T) * hidden > (1 << 16))
  for (int t = 0; t < T; ++t) {
    const float* g = gate_up + int64_t(t) * 2 * hidden;
    const float* u = g + hidden;
    float* o = out + int64_t(t) * hidden;
    for (int i = 0; i < hidden; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }
}

void write_kv(float* k_pool, float* v_pool, const KvLayout& kv, const StepBatch& batch, const float* k,
              const float* v, int64_t kv_stride) {
  const size_t row_bytes = sizeof(float) * size_t(kv.token_stride());
  for (const SeqSlice& s : batch.seqs) {
    const int32_t* table = batch.block_tables.data() + s.block_table_start;
    for (int j = 0; j < s.query_len; ++j) {
      const int t = s.query_start + j;
      const int64_t off = kv.offset(table, batch.positions[t]);
      std::memcpy(k_pool + off, k + t * kv_stride, row_bytes);
      std::memcpy(v_pool + off, v + t * kv_stride, row_bytes);
    }
  }
}

namespace {

/// One query token against a range of `nkh` KV heads starting at `kh0` and the `group` query heads that
/// share each (GQA). The context is walked block by block (one block-table lookup per block, not a division
/// per position), and each position's K (then V) row is read once for all the heads of the range: with all
/// heads of a token in one item the reads are contiguous [n_kv_heads, head_dim] rows instead of 256-byte
/// pieces at a 3 KiB stride, which the prefetchers follow far better.
/// q: [nkh * group, hd] (consecutive heads); out: likewise; sc: [nkh * group, n_ctx] scratch.
/// always_inline: compiled once for AVX2/FMA and once for the baseline ISA by the two wrappers below.
[[gnu::always_inline]] inline void attend_heads_body(float* out, const float* q, int kh0, int nkh, int group, int hd,
                                                     int n_ctx, const float* k_pool, const float* v_pool,
                                                     const KvLayout& kv, const int32_t* table, float* sc) {
  const float scale = 1.0f / std::sqrt(float(hd));
  const int heads = nkh * group;
  const int64_t ts = kv.token_stride(), block_floats = int64_t(kv.block_size) * ts;
  for (int j0 = 0, blk = 0; j0 < n_ctx; j0 += kv.block_size, ++blk) {
    const float* kb = k_pool + table[blk] * block_floats + int64_t(kh0) * hd;
    const int n = std::min(kv.block_size, n_ctx - j0);
    for (int s = 0; s < n; ++s) {
      const float* row = kb + s * ts;
      for (int h = 0; h < heads; ++h) {
        const float* kr = row + int64_t(h / group) * hd;
        const float* qh = q + int64_t(h) * hd;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int d = 0; d < hd; ++d) dot += qh[d] * kr[d];
        sc[int64_t(h) * n_ctx + j0 + s] = dot * scale;
      }
    }
  }
  for (int h = 0; h < heads; ++h) {
    float* s = sc + int64_t(h) * n_ctx;
    float mx = s[0];
    for (int j = 1; j < n_ctx; ++j) mx = std::max(mx, s[j]);
    float sum = 0.0f;
    for (int j = 0; j < n_ctx; ++j) {
      s[j] = std::exp(s[j] - mx);
      sum += s[j];
    }
    const float inv = 1.0f / sum;
    for (int j = 0; j < n_ctx; ++j) s[j] *= inv;
  }
  std::fill(out, out + int64_t(heads) * hd, 0.0f);
  for (int j0 = 0, blk = 0; j0 < n_ctx; j0 += kv.block_size, ++blk) {
    const float* vb = v_pool + table[blk] * block_floats + int64_t(kh0) * hd;
    const int n = std::min(kv.block_size, n_ctx - j0);
    for (int s = 0; s < n; ++s) {
      const float* row = vb + s * ts;
      for (int h = 0; h < heads; ++h) {
        const float* vr = row + int64_t(h / group) * hd;
        const float p = sc[int64_t(h) * n_ctx + j0 + s];
        float* o = out + int64_t(h) * hd;
#pragma omp simd
        for (int d = 0; d < hd; ++d) o[d] += p * vr[d];
      }
    }
  }
}

using AttendFn = void (*)(float*, const float*, int, int, int, int, int, const float*, const float*,
                          const KvLayout&, const int32_t*, float*);

void attend_heads_generic(float* out, const float* q, int kh0, int nkh, int group, int hd, int n_ctx,
                          const float* k_pool, const float* v_pool, const KvLayout& kv, const int32_t* table,
                          float* sc) {
  attend_heads_body(out, q, kh0, nkh, group, hd, n_ctx, k_pool, v_pool, kv, table, sc);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) void attend_heads_avx2(float* out, const float* q, int kh0, int nkh, int group,
                                                           int hd, int n_ctx, const float* k_pool,
                                                           const float* v_pool, const KvLayout& kv,
                                                           const int32_t* table, float* sc) {
  attend_heads_body(out, q, kh0, nkh, group, hd, n_ctx, k_pool, v_pool, kv, table, sc);
}
#endif

AttendFn attend_heads() {
#if defined(__x86_64__) || defined(__i386__)
  if (cpu_has_avx2_fma()) return attend_heads_avx2;
#endif
  return attend_heads_generic;
}

}  // namespace

void paged_attention(float* out, const float* q, int64_t q_stride, const float* k_pool, const float* v_pool,
                     const KvLayout& kv, int n_heads, const StepBatch& batch, AttentionScratch& scratch) {
  const int T = batch.num_tokens();
  const int hd = kv.head_dim, n_kv = kv.n_kv_heads, group = n_heads / n_kv;
  int max_ctx = 1;
  for (const SeqSlice& s : batch.seqs) max_ctx = std::max(max_ctx, s.context_len);
  const int n_threads = omp_get_max_threads();
  // Work items are (token, range of KV heads): all heads of a token in one item (contiguous K/V rows) unless
  // there are too few tokens to keep every thread busy, as in a decode at batch 1; then the heads are split
  // into up to 2 x threads / T ranges.
  const int ranges = std::clamp((2 * n_threads + T - 1) / std::max(T, 1), 1, n_kv);
  const int range_kv = (n_kv + ranges - 1) / ranges;
  const size_t per_thread = size_t(range_kv) * group * max_ctx;
  if (scratch.scores.size() < per_thread * n_threads) scratch.scores.resize(per_thread * n_threads);
  // token -> its sequence, so work items spread evenly over threads whether the step is one long prefill or
  // many single-token decodes.
  if (scratch.token_seq.size() < size_t(T)) scratch.token_seq.resize(T);
  int64_t work = 0;  // multiply-adds, to keep tiny steps off the thread team (a fork/join costs ~10 us idle,
                     // far more when the cores are oversubscribed)
  for (size_t si = 0; si < batch.seqs.size(); ++si)
    for (int j = 0; j < batch.seqs[si].query_len; ++j) {
      const int t = batch.seqs[si].query_start + j;
      scratch.token_seq[t] = int(si);
      work += int64_t(batch.positions[t] + 1) * n_heads * hd * 2;
    }

  const AttendFn attend = attend_heads();
  const int64_t items = int64_t(T) * ranges;
#pragma omp parallel for schedule(dynamic, 1) if (work > (1 << 20))
  for (int64_t item = 0; item < items; ++item) {
    const int t = int(item / ranges), kh0 = int(item % ranges) * range_kv, nkh = std::min(range_kv, n_kv - kh0);
    if (nkh <= 0) continue;
    const SeqSlice& s = batch.seqs[scratch.token_seq[t]];
    const int32_t* table = batch.block_tables.data() + s.block_table_start;
    float* sc = scratch.scores.data() + per_thread * omp_get_thread_num();
    const int n_ctx = batch.positions[t] + 1;  // causal: positions 0..pos
    attend(out + int64_t(t) * n_heads * hd + int64_t(kh0) * group * hd, q + t * q_stride + int64_t(kh0) * group * hd,
           kh0, nkh, group, hd, n_ctx, k_pool, v_pool, kv, table, sc);
  }
}

}  // namespace engine::cpu
