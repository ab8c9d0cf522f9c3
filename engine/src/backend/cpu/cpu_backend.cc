// CPU backend: the whole Llama forward pass over one StepBatch in float32.
//   x [T, dim] = embed(tokens)
//   per layer: xn = rmsnorm(x); qkv [T, q+2kv] = xn · Wqkv^T (one GEMM); RoPE on q, k; k, v -> paged cache;
//              att [T, q] = paged causal GQA attention; x += att · Wo^T (GEMM with beta = 1 adds the residual);
//              xn = rmsnorm(x); gu [T, 2*hidden] = xn · Wgu^T (one GEMM); act = silu(gate) * up; x += act · Wdown^T
//   logits [rows, vocab] = rmsnorm(x[last token of each want_logits sequence]) · Wlm^T
// q/k/v and gate/up weights are concatenated at load so each is one GEMM over all the step's tokens, and every
// GEMM weight is repacked once into the panels of packed_gemm.h (no per-call packing; batch-invariant rows).
#include "backend/cpu/cpu_backend.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/packed_gemm.h"

namespace engine::cpu {
namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int num_threads) : num_threads_(num_threads) {
    // No GEMM goes through OpenBLAS any more (packed_gemm.h); should anything call it, one thread keeps its own
    // busy-waiting pthread pool from taking the cores from the OpenMP team.
    openblas_set_num_threads(1);
  }
  std::string name() const override { return "cpu"; }
  std::string dtype() const override { return "f32"; }
  int vocab_size() const override { return cfg_.vocab_size; }
  void load(const ModelWeights& w) override;
  int64_t kv_bytes_per_token() const override {
    return int64_t(2) * cfg_.n_layers * cfg_.n_kv_heads * cfg_.head_dim * int64_t(sizeof(float));
  }
  int64_t default_kv_budget_bytes() const override { return int64_t(512) << 20; }
  void allocate_kv_cache(int64_t num_blocks, int block_size) override;
  void forward(const StepBatch& batch, float* logits) override;

 private:
  struct Layer {
    const float* attn_norm = nullptr;  // [dim]
    PackedWeight wqkv;                 // [q_dim + 2*kv_dim, dim]: rows of wq, then wk, then wv
    PackedWeight wo;                   // [dim, q_dim]
    const float* ffn_norm = nullptr;   // [dim]
    PackedWeight w_gate_up;            // [2*hidden, dim]: rows of w_gate, then w_up
    PackedWeight w_down;               // [dim, hidden]
  };
  const float* f32_view(const Tensor& t);
  static PackedWeight pack(const Tensor& t);
  static PackedWeight pack_rows(std::initializer_list<const Tensor*> parts);
  void check(const StepBatch& b) const;
  void ensure_scratch(int T, int rows);

  int num_threads_;
  ModelConfig cfg_;
  int q_dim_ = 0, kv_dim_ = 0, qkv_dim_ = 0;
  std::vector<std::shared_ptr<const void>> storage_;  // mappings that f32 weights are used from in place
  std::vector<std::vector<float>> owned_;             // converted / concatenated weights
  const float* embed_ = nullptr;                      // [vocab, dim]
  const float* final_norm_ = nullptr;                 // [dim]
  PackedWeight lm_head_;                              // [vocab, dim]
  std::vector<Layer> layers_;
  RopeTable rope_;

  KvLayout kv_;
  int64_t num_blocks_ = 0;
  // [2][n_layers][num_blocks][block_size][n_kv_heads][head_dim]: all K, then all V. Left uninitialised: a
  // slot is always written before attention reads it, and not zero-filling lets the OS map pages lazily, so a
  // large budget costs nothing at start-up until it is used.
  std::unique_ptr<float[]> kv_pool_;

  // Scratch sized for the largest step seen (grown rarely, never shrunk).
  int cap_tokens_ = 0, cap_rows_ = 0;
  std::vector<float> x_, xn_, qkv_, att_, gu_, act_, xs_;
  AttentionScratch attn_scratch_;
};

const float* CpuBackend::f32_view(const Tensor& t) {
  if (t.dtype == DType::kF32 && reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0)
    return static_cast<const float*>(t.data);
  owned_.push_back(t.to_f32());
  return owned_.back().data();
}

PackedWeight CpuBackend::pack(const Tensor& t) {
  if (t.dtype == DType::kF32 && reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0)
    return PackedWeight(static_cast<const float*>(t.data), int(t.shape[0]), int(t.shape[1]));
  const std::vector<float> f = t.to_f32();
  return PackedWeight(f.data(), int(t.shape[0]), int(t.shape[1]));
}

PackedWeight CpuBackend::pack_rows(std::initializer_list<const Tensor*> parts) {
  std::vector<float> out;
  int rows = 0;
  for (const Tensor* p : parts) {
    std::vector<float> f = p->to_f32();
    out.insert(out.end(), f.begin(), f.end());
    rows += int(p->shape[0]);
  }
  return PackedWeight(out.data(), rows, int(parts.begin()[0]->shape[1]));
}

void CpuBackend::load(const ModelWeights& w) {
  cfg_ = w.config;
  cfg_.validate(cfg_.name);
  q_dim_ = cfg_.n_heads * cfg_.head_dim;
  kv_dim_ = cfg_.n_kv_heads * cfg_.head_dim;
  qkv_dim_ = q_dim_ + 2 * kv_dim_;
  storage_ = w.storage;
  owned_.clear();
  embed_ = f32_view(w.tok_embeddings);
  lm_head_ = pack(w.lm_head);
  final_norm_ = f32_view(w.final_norm);
  layers_.clear();
  for (const auto& l : w.layers) {
    Layer c;
    c.attn_norm = f32_view(l.attn_norm);
    c.wqkv = pack_rows({&l.wq, &l.wk, &l.wv});
    c.wo = pack(l.wo);
    c.ffn_norm = f32_view(l.ffn_norm);
    c.w_gate_up = pack_rows({&l.w_gate, &l.w_up});
    c.w_down = pack(l.w_down);
    layers_.push_back(std::move(c));
  }
  rope_.init(cfg_.head_dim, cfg_.max_seq_len, cfg_.rope_theta);
  kv_.n_kv_heads = cfg_.n_kv_heads;
  kv_.head_dim = cfg_.head_dim;
}

void CpuBackend::allocate_kv_cache(int64_t num_blocks, int block_size) {
  if (cfg_.n_layers == 0) throw std::logic_error("CpuBackend: allocate_kv_cache before load");
  if (num_blocks <= 0 || block_size <= 0)
    throw std::invalid_argument("CpuBackend: KV cache needs num_blocks > 0 and block_size > 0, got " +
                                std::to_string(num_blocks) + " and " + std::to_string(block_size));
  kv_.block_size = block_size;
  num_blocks_ = num_blocks;
  kv_pool_.reset(new float[size_t(2) * cfg_.n_layers * num_blocks * block_size * kv_dim_]);
}

/// Rejects a malformed batch before any memory is touched (a model-runner bug must not become UB).
void CpuBackend::check(const StepBatch& b) const {
  auto bad = [](const std::string& what) { throw std::invalid_argument("CpuBackend::forward: " + what); };
  if (layers_.empty()) bad("no model loaded");
  if (num_blocks_ == 0) bad("KV cache not allocated");
  const int T = b.num_tokens();
  if (b.positions.size() != b.tokens.size()) bad("positions and tokens differ in length");
  for (int32_t t : b.tokens)
    if (t < 0 || t >= cfg_.vocab_size) bad("token id " + std::to_string(t) + " outside the vocabulary");
  int next = 0;
  for (const SeqSlice& s : b.seqs) {
    if (s.query_start != next || s.query_len < 1) bad("sequence slices must be contiguous, in order, non-empty");
    next += s.query_len;
    if (next > T) bad("sequence slices run past the tokens");
    if (s.context_len < s.query_len || s.context_len > cfg_.max_seq_len)
      bad("context_len " + std::to_string(s.context_len) + " outside [query_len, max_seq_len " +
          std::to_string(cfg_.max_seq_len) + "]");
    const int need = (s.context_len + kv_.block_size - 1) / kv_.block_size;
    if (s.num_blocks < need || s.block_table_start < 0 ||
        size_t(s.block_table_start) + size_t(s.num_blocks) > b.block_tables.size())
      bad("block table too short for context_len " + std::to_string(s.context_len));
    for (int i = 0; i < need; ++i) {
      const int32_t id = b.block_tables[s.block_table_start + i];
      if (id < 0 || id >= num_blocks_) bad("block id " + std::to_string(id) + " outside the KV pool");
    }
    for (int j = 0; j < s.query_len; ++j)
      if (b.positions[s.query_start + j] != s.context_len - s.query_len + j)
        bad("position of token " + std::to_string(s.query_start + j) + " disagrees with context_len");
  }
  if (next != T) bad("tokens not covered by any sequence slice");
}

void CpuBackend::ensure_scratch(int T, int rows) {
  if (T > cap_tokens_) {
    cap_tokens_ = std::max(T, 2 * cap_tokens_);
    const size_t n = size_t(cap_tokens_);
    x_.resize(n * cfg_.dim);
    xn_.resize(n * cfg_.dim);
    qkv_.resize(n * qkv_dim_);
    att_.resize(n * q_dim_);
    gu_.resize(n * 2 * cfg_.hidden_dim);
    act_.resize(n * cfg_.hidden_dim);
  }
  if (rows > cap_rows_) {
    cap_rows_ = std::max(rows, 2 * cap_rows_);
    xs_.resize(size_t(cap_rows_) * cfg_.dim);
  }
}

void CpuBackend::forward(const StepBatch& b, float* logits) {
  check(b);
  if (num_threads_ > 0) omp_set_num_threads(num_threads_);  // per calling thread: the engine's step thread
  const int T = b.num_tokens(), rows = b.num_logits(), dim = cfg_.dim, hid = cfg_.hidden_dim;
  if (T == 0) return;
  if (rows > 0 && !logits) throw std::invalid_argument("CpuBackend::forward: logits buffer is null");
  ensure_scratch(T, rows);
  float *x = x_.data(), *xn = xn_.data(), *qkv = qkv_.data(), *att = att_.data();
  for (int t = 0; t < T; ++t)
    std::memcpy(x + size_t(t) * dim, embed_ + size_t(b.tokens[t]) * dim, sizeof(float) * dim);

  const int64_t layer_stride = num_blocks_ * kv_.block_size * kv_dim_;
  for (int l = 0; l < cfg_.n_layers; ++l) {
    const Layer& w = layers_[l];
    float* k_pool = kv_pool_.get() + size_t(l) * layer_stride;
    float* v_pool = kv_pool_.get() + size_t(cfg_.n_layers + l) * layer_stride;

    rmsnorm(xn, x, w.attn_norm, T, dim, cfg_.norm_eps);
    packed_linear(qkv, xn, w.wqkv, T, 0.0f);
#pragma omp parallel for schedule(static) if (int64_t(T) * qkv_dim_ > (1 << 16))
    for (int t = 0; t < T; ++t) {
      float* row = qkv + size_t(t) * qkv_dim_;
      const int pos = b.positions[t];
      rope(row, cfg_.n_heads, cfg_.head_dim, rope_.cos_at(pos), rope_.sin_at(pos));
      rope(row + q_dim_, cfg_.n_kv_heads, cfg_.head_dim, rope_.cos_at(pos), rope_.sin_at(pos));
    }
    write_kv(k_pool, v_pool, kv_, b, qkv + q_dim_, qkv + q_dim_ + kv_dim_, qkv_dim_);
    paged_attention(att, qkv, qkv_dim_, k_pool, v_pool, kv_, cfg_.n_heads, b, attn_scratch_);
    packed_linear(x, att, w.wo, T, 1.0f);  // x += att · Wo^T

    rmsnorm(xn, x, w.ffn_norm, T, dim, cfg_.norm_eps);
    packed_linear(gu_.data(), xn, w.w_gate_up, T, 0.0f);
    silu_mul(act_.data(), gu_.data(), T, hid);
    packed_linear(x, act_.data(), w.w_down, T, 1.0f);  // x += act · Wdown^T
  }
  if (rows == 0) return;

  // Only the last query token of each want_logits sequence reaches the final norm and the lm_head.
  int r = 0;
  for (const SeqSlice& s : b.seqs)
    if (s.want_logits)
      std::memcpy(xs_.data() + size_t(r++) * dim, x + size_t(s.query_start + s.query_len - 1) * dim,
                  sizeof(float) * dim);
  rmsnorm(xs_.data(), xs_.data(), final_norm_, rows, dim, cfg_.norm_eps);
  packed_linear(logits, xs_.data(), lm_head_, rows, 0.0f);
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const EngineConfig& config) {
  if (config.dtype == ComputeDType::kBf16)
    throw ModelLoadError("the cpu backend computes in f32 only: dtype bf16 is not supported (use auto or f32, or the "
                         "cuda backend)");
  if (config.kv_cache_dtype == KvCacheDType::kFp8)
    throw ModelLoadError("the cpu backend keeps its KV cache in f32: kv_cache_dtype fp8 needs the cuda backend");
  // config.deterministic needs nothing here: every kernel of this backend computes a token's row the same way
  // whatever else shares the step (packed_gemm.h; attention, norms and activations work row by row).
  return std::make_unique<CpuBackend>(config.num_threads);
}

}  // namespace engine::cpu
