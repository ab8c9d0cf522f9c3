// CpuShard: the CPU backend's forward pass (backend/cpu/cpu_backend.cc) restricted to one rank's heads,
// intermediate columns and vocabulary rows, stopping where the ranks' partial results must be combined.
#include "parallel/cpu_shard.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "parallel/shard_weights.h"

namespace engine::parallel {
namespace {

/// C[M, N] = A[M, K] · W[N, K]^T   (W in PyTorch Linear layout [out, in]).
void linear(float* C, const float* A, const float* W, int M, int N, int K) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, W, K, 0.0f, C, N);
}

std::vector<float> rows_f32(std::initializer_list<const Tensor*> parts) {
  std::vector<float> out;
  for (const Tensor* p : parts) {
    std::vector<float> f = p->to_f32();
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

}  // namespace

CpuShard::CpuShard(const ModelWeights& w, const TpPlan& plan, int rank) : rank_(rank) {
  const ModelWeights s = shard_weights(w, plan, rank);
  cfg_ = s.config;
  full_vocab_ = w.config.vocab_size;
  vocab0_ = plan.first_vocab(rank);
  q_dim_ = cfg_.n_heads * cfg_.head_dim;
  kv_dim_ = cfg_.n_kv_heads * cfg_.head_dim;
  qkv_dim_ = q_dim_ + 2 * kv_dim_;
  embed_ = s.tok_embeddings.to_f32();
  lm_head_ = s.lm_head.to_f32();
  final_norm_ = s.final_norm.to_f32();
  for (const auto& l : s.layers) {
    Layer o;
    o.attn_norm = l.attn_norm.to_f32();
    o.wqkv = rows_f32({&l.wq, &l.wk, &l.wv});
    o.wo = l.wo.to_f32();
    o.ffn_norm = l.ffn_norm.to_f32();
    o.w_gate_up = rows_f32({&l.w_gate, &l.w_up});
    o.w_down = l.w_down.to_f32();
    layers_.push_back(std::move(o));
  }
  rope_.init(cfg_.head_dim, cfg_.max_seq_len, cfg_.rope_theta);
  kv_.n_kv_heads = cfg_.n_kv_heads;
  kv_.head_dim = cfg_.head_dim;
}

int64_t CpuShard::kv_bytes_per_token() const {
  return int64_t(2) * cfg_.n_layers * kv_dim_ * int64_t(sizeof(float));
}

void CpuShard::allocate_kv_cache(int64_t num_blocks, int block_size) {
  if (num_blocks <= 0 || block_size <= 0)
    throw std::invalid_argument("CpuShard: KV cache needs num_blocks > 0 and block_size > 0");
  kv_.block_size = block_size;
  num_blocks_ = num_blocks;
  kv_pool_.reset(new float[size_t(2) * cfg_.n_layers * num_blocks * block_size * kv_dim_]);
}

/// The checks that keep a malformed batch from reading or writing outside the buffers.
void CpuShard::check(const StepBatch& b) const {
  auto bad = [](const std::string& what) { throw std::invalid_argument("CpuShard: " + what); };
  if (num_blocks_ == 0) bad("KV cache not allocated");
  if (b.positions.size() != b.tokens.size()) bad("positions and tokens differ in length");
  for (int32_t t : b.tokens)
    if (t < 0 || t >= full_vocab_) bad("token id " + std::to_string(t) + " outside the vocabulary");
  int next = 0;
  for (const SeqSlice& s : b.seqs) {
    if (s.query_start != next || s.query_len < 1) bad("sequence slices must be contiguous, in order, non-empty");
    next += s.query_len;
    if (next > b.num_tokens()) bad("sequence slices run past the tokens");
    if (s.context_len < s.query_len || s.context_len > cfg_.max_seq_len) bad("context_len out of range");
    const int need = (s.context_len + kv_.block_size - 1) / kv_.block_size;
    if (s.num_blocks < need || s.block_table_start < 0 ||
        size_t(s.block_table_start) + size_t(s.num_blocks) > b.block_tables.size())
      bad("block table too short");
    for (int i = 0; i < need; ++i) {
      const int32_t id = b.block_tables[s.block_table_start + i];
      if (id < 0 || id >= num_blocks_) bad("block id " + std::to_string(id) + " outside the KV pool");
    }
    for (int j = 0; j < s.query_len; ++j)
      if (b.positions[s.query_start + j] != s.context_len - s.query_len + j) bad("positions disagree with context_len");
  }
  if (next != b.num_tokens()) bad("tokens not covered by any sequence slice");
}

void CpuShard::embed(const StepBatch& b, float* x) const {
  check(b);
  const int dim = cfg_.dim;
  for (int t = 0; t < b.num_tokens(); ++t) {
    const int row = b.tokens[t] - vocab0_;
    float* xr = x + size_t(t) * dim;
    if (row >= 0 && row < cfg_.vocab_size)
      std::memcpy(xr, embed_.data() + size_t(row) * dim, sizeof(float) * dim);
    else
      std::fill(xr, xr + dim, 0.0f);
  }
}

void CpuShard::attention(int layer, const StepBatch& b, const float* x, float* out) {
  check(b);
  const int T = b.num_tokens(), dim = cfg_.dim;
  const Layer& w = layers_.at(size_t(layer));
  xn_.resize(size_t(T) * dim);
  qkv_.resize(size_t(T) * qkv_dim_);
  att_.resize(size_t(T) * q_dim_);
  const int64_t layer_stride = num_blocks_ * kv_.block_size * kv_dim_;
  float* k_pool = kv_pool_.get() + size_t(layer) * layer_stride;
  float* v_pool = kv_pool_.get() + size_t(cfg_.n_layers + layer) * layer_stride;

  cpu::rmsnorm(xn_.data(), x, w.attn_norm.data(), T, dim, cfg_.norm_eps);
  linear(qkv_.data(), xn_.data(), w.wqkv.data(), T, qkv_dim_, dim);
  for (int t = 0; t < T; ++t) {
    float* row = qkv_.data() + size_t(t) * qkv_dim_;
    const int pos = b.positions[t];
    cpu::rope(row, cfg_.n_heads, cfg_.head_dim, rope_.cos_at(pos), rope_.sin_at(pos));
    cpu::rope(row + q_dim_, cfg_.n_kv_heads, cfg_.head_dim, rope_.cos_at(pos), rope_.sin_at(pos));
  }
  cpu::write_kv(k_pool, v_pool, kv_, b, qkv_.data() + q_dim_, qkv_.data() + q_dim_ + kv_dim_, qkv_dim_);
  cpu::paged_attention(att_.data(), qkv_.data(), qkv_dim_, k_pool, v_pool, kv_, cfg_.n_heads, b, attn_scratch_);
  linear(out, att_.data(), w.wo.data(), T, dim, q_dim_);
}

void CpuShard::mlp(int layer, const float* x, int T, float* out) {
  const int dim = cfg_.dim, hid = cfg_.hidden_dim;
  const Layer& w = layers_.at(size_t(layer));
  xn_.resize(size_t(T) * dim);
  gu_.resize(size_t(T) * 2 * hid);
  act_.resize(size_t(T) * hid);
  cpu::rmsnorm(xn_.data(), x, w.ffn_norm.data(), T, dim, cfg_.norm_eps);
  linear(gu_.data(), xn_.data(), w.w_gate_up.data(), T, 2 * hid, dim);
  cpu::silu_mul(act_.data(), gu_.data(), T, hid);
  linear(out, act_.data(), w.w_down.data(), T, dim, hid);
}

void CpuShard::logits(const StepBatch& b, const float* x, float* out) {
  const int rows = b.num_logits(), dim = cfg_.dim;
  if (rows == 0) return;
  xs_.resize(size_t(rows) * dim);
  int r = 0;
  for (const SeqSlice& s : b.seqs)
    if (s.want_logits)
      std::memcpy(xs_.data() + size_t(r++) * dim, x + size_t(s.query_start + s.query_len - 1) * dim,
                  sizeof(float) * dim);
  cpu::rmsnorm(xs_.data(), xs_.data(), final_norm_.data(), rows, dim, cfg_.norm_eps);
  linear(out, xs_.data(), lm_head_.data(), rows, cfg_.vocab_size, dim);
}

}  // namespace engine::parallel
