// The CPU backend's float32 kernels, apart from the GEMMs (OpenBLAS). Each is checked against a float64
// reference in tests/cpu_kernels_test.cc. Row-major throughout; T = tokens in the step.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"

namespace engine::cpu {

/// Whether this machine runs AVX2 and FMA: kernels compiled for them (function target attributes) are chosen
/// at run time, so the build needs no -march flag.
bool cpu_has_avx2_fma();
/// Whether this machine runs AVX-512F (the packed GEMM's zmm tiles), chosen the same way.
bool cpu_has_avx512f();

/// out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w, for t < T.  x, out: [T, dim] (may alias); w: [dim].
void rmsnorm(float* out, const float* x, const float* w, int T, int dim, float eps);

/// cos/sin of RoPE angles pos * theta^(-2i/head_dim), i < head_dim/2, computed the way transformers does
/// (f32 inverse frequencies, f32 product) so positions far from 0 agree with it too.
struct RopeTable {
  int half = 0;                 ///< head_dim / 2
  int max_pos = 0;
  std::vector<float> cos, sin;  ///< [max_pos, half]
  void init(int head_dim, int max_pos, float theta);
  const float* cos_at(int pos) const { return cos.data() + int64_t(pos) * half; }
  const float* sin_at(int pos) const { return sin.data() + int64_t(pos) * half; }
};

/// Rotates each head of one token in place with the half pairing: dims (i, i + hd/2) rotate by angle i.
/// v: [n_heads, hd]; c, s: [hd/2] for this token's position.
void rope(float* v, int n_heads, int hd, const float* c, const float* s);

/// out[t, i] = silu(gate_up[t, i]) * gate_up[t, hidden + i].  gate_up: [T, 2*hidden]; out: [T, hidden].
void silu_mul(float* out, const float* gate_up, int T, int hidden);

/// A paged KV pool of one layer, K or V: [num_blocks][block_size][n_kv_heads][head_dim] floats.
struct KvLayout {
  int block_size = 16;
  int n_kv_heads = 0;
  int head_dim = 0;
  int64_t token_stride() const { return int64_t(n_kv_heads) * head_dim; }
  /// The [n_kv_heads, head_dim] slot of position `pos` of a sequence whose block ids are `block_table`.
  int64_t offset(const int32_t* block_table, int pos) const {
    return (int64_t(block_table[pos / block_size]) * block_size + pos % block_size) * token_stride();
  }
};

/// Copies this step's K and V rows into the pools at each token's position (through its sequence's block
/// table). k, v: token t's [n_kv_heads, head_dim] at k + t * kv_stride (likewise v).
void write_kv(float* k_pool, float* v_pool, const KvLayout& kv, const StepBatch& batch, const float* k,
              const float* v, int64_t kv_stride);

/// Causal attention of every query token over its sequence's cached K/V (positions 0..pos), softmax in f32
/// with the max subtracted, grouped-query: head h reads kv head h / (n_heads / n_kv_heads).
/// q: token t's [n_heads, head_dim] at q + t * q_stride; out: [T, n_heads * head_dim].
/// Buffers of paged_attention, grown on first use (threads x group x longest context scores; token -> sequence)
/// and reused after that.
struct AttentionScratch {
  std::vector<float> scores;
  std::vector<int> token_seq;
};
void paged_attention(float* out, const float* q, int64_t q_stride, const float* k_pool, const float* v_pool,
                     const KvLayout& kv, int n_heads, const StepBatch& batch, AttentionScratch& scratch);

}  // namespace engine::cpu
