// One tensor-parallel rank's share of the Llama forward pass, computed with the CPU backend's float32
// kernels (backend/cpu/cpu_kernels.h) and cut at the points where ranks communicate. Driving N of them and
// adding up (all-reduce) or joining (all-gather) their outputs between the stages reproduces the unsharded
// forward pass; tests/engine/parallel/tensor_parallel_test.cc does exactly that against the CPU backend.
// The stages, for a step of T tokens (x: the full residual [T, dim], identical on every rank):
//   x   = sum_r embed_r(tokens)                        vocabulary-parallel embedding   (all-reduce)
//   per layer:
//   x  += sum_r attention_r(layer, x)                  QKV column-, O row-parallel     (all-reduce)
//   x  += sum_r mlp_r(layer, x)                        gate/up column-, down row-parallel (all-reduce)
//   logits = [logits_0(x) | logits_1(x) | ...]         vocabulary-parallel LM head     (all-gather)
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_kernels.h"
#include "model/model.h"
#include "parallel/tp_plan.h"

namespace engine::parallel {

class CpuShard {
 public:
  /// Rank `rank`'s shard of `w` (shard_weights.h), converted to float32.
  CpuShard(const ModelWeights& w, const TpPlan& plan, int rank);

  int rank() const { return rank_; }
  /// The shard's shapes: this rank's n_heads, n_kv_heads, hidden_dim and vocab_size.
  const ModelConfig& config() const { return cfg_; }
  /// This rank's KV cache: its KV heads only, [2][n_layers][num_blocks][block_size][n_kv_heads][head_dim].
  void allocate_kv_cache(int64_t num_blocks, int block_size);
  int64_t kv_bytes_per_token() const;

  /// x [T, dim]: the embedding rows of the tokens in this rank's vocabulary slice, zeros for the others.
  void embed(const StepBatch& b, float* x) const;
  /// out [T, dim] = attention of this rank's heads over rmsnorm(x) · (its columns of Wo)^T: a partial sum
  /// of the attention block's output. Writes its KV heads' K/V of the step into its cache.
  void attention(int layer, const StepBatch& b, const float* x, float* out);
  /// out [T, dim] = (silu(rmsnorm(x) · Wgate_r^T) * (rmsnorm(x) · Wup_r^T)) · (its columns of Wdown)^T.
  void mlp(int layer, const float* x, int T, float* out);
  /// out [rows, vocab / N]: this rank's columns of the logits of the last token of each want_logits sequence.
  void logits(const StepBatch& b, const float* x, float* out);

 private:
  struct Layer {
    std::vector<float> attn_norm, wqkv, wo, ffn_norm, w_gate_up, w_down;
  };
  void check(const StepBatch& b) const;

  int rank_ = 0;
  int full_vocab_ = 0;
  int vocab0_ = 0;  ///< first vocabulary row of this rank
  ModelConfig cfg_;
  int q_dim_ = 0, kv_dim_ = 0, qkv_dim_ = 0;
  std::vector<float> embed_, lm_head_, final_norm_;
  std::vector<Layer> layers_;
  cpu::RopeTable rope_;
  cpu::KvLayout kv_;
  int64_t num_blocks_ = 0;
  std::unique_ptr<float[]> kv_pool_;
  std::vector<float> xn_, qkv_, att_, gu_, act_, xs_;
  cpu::AttentionScratch attn_scratch_;
};

}  // namespace engine::parallel
