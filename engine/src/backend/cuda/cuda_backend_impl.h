// The CUDA backend's class, shared by its source files (cuda_backend.cc: the forward pass and graphs;
// cuda_weights.cc: weight upload). Not for use outside src/backend/cuda/.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/kernels.h"

namespace engine::cuda {

/// Matrices are stored in the mode's element type E (bf16, or float in the f32 mode): `void*` here, typed
/// where a kernel needs them; cuBLAS takes them as they are.
struct DeviceLayer {
  void* wqkv = nullptr;   ///< E [(nh + 2*nkv)*hd, dim]: wq, wk, wv rows concatenated (one GEMM)
  void* wo = nullptr;     ///< E [dim, nh*hd]
  void* wgu = nullptr;    ///< E [2*hidden, dim]: w_gate rows, then w_up rows (one GEMM)
  void* wd = nullptr;     ///< E [dim, hidden]
  float* attn_norm = nullptr;  ///< [dim]
  float* ffn_norm = nullptr;   ///< [dim]
};

/// All weights on the device. `allocations` owns every pointer above.
struct DeviceWeights {
  ModelConfig cfg;
  bool f32 = false;            ///< matrices in float (dtype f32) rather than bf16
  void* tok_emb = nullptr;     ///< E [vocab, dim]
  void* lm_head = nullptr;     ///< E [vocab, dim]; == tok_emb when tied
  float* final_norm = nullptr; ///< [dim]
  float2* rope = nullptr;      ///< [rope_len, hd/2] (cos, sin)
  int rope_len = 0;
  std::vector<DeviceLayer> layers;
  std::vector<void*> allocations;
  int64_t bytes = 0;           ///< device bytes of the weights
  int64_t bytes_read_per_token_step = 0;  ///< every layer matrix + lm_head (what one decode step streams)
  void free_all();
};

/// Converts (f32/f16/bf16 -> bf16, or -> f32 when `f32`, for matrices; f32 norms) and uploads `w`; rope
/// table for `rope_len` positions. Throws ModelLoadError naming the tensor whose shape does not match the
/// config.
DeviceWeights upload_weights(const ModelWeights& w, int rope_len, bool f32);

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const EngineConfig& cfg);
  ~CudaBackend() override;
  std::string name() const override { return "cuda"; }
  std::string dtype() const override { return f32_ ? "f32" : "bf16"; }
  void load(const ModelWeights& w) override;
  int64_t kv_bytes_per_token() const override;
  int64_t default_kv_budget_bytes() const override;
  void allocate_kv_cache(int64_t num_blocks, int block_size) override;
  void forward(const StepBatch& batch, float* logits) override;
  void forward_argmax(const StepBatch& batch, int32_t* token_ids) override;
  int vocab_size() const override { return loaded_ ? mc_.vocab_size : 0; }

  std::vector<std::pair<std::string, double>> profile(const StepBatch& batch);
  void fill_kv(float amp, uint64_t seed);

 private:
  /// Shapes of one staged step (what a graph is specialised on).
  struct Step {
    int T = 0;          ///< query tokens (padded for graphs)
    int n_logits = 0;   ///< rows of logits
    int num_splits = 1; ///< attention context splits (of the decode list when n_tiles > 0)
    /// Prefill tiles (attention_prefill.cu) in the attention-lists input section: n_tiles packed tiles, then n_dec
    /// decode token indices for the paged kernel. n_tiles == 0: the paged kernel runs over all T tokens
    /// (decode-only steps, graphs, deterministic mode, LLM_CUDA_PREFILL_KERNEL=0).
    int n_tiles = 0;
    int n_dec = 0;
  };
  struct Marks;  // profiling events, cuda_backend.cc
  Step stage_inputs(const StepBatch& b, int pad_to);
  void run_layers(const Step& st, Marks* marks);
  template <typename E>
  void run_layers_as(const Step& st, Marks* marks);  ///< the pass with storage type E (cuda_backend.cc)
  Step run(const StepBatch& b);
  void ensure_capacity(int tokens, int64_t bt_entries);
  void free_activations();
  int splits_for(int T) const;
  int graph_size_for(int T) const;
  void gemm(const void* x, const void* w, void* y, bool y_f32, int M, int N, int K);
  size_t elem_bytes() const { return f32_ ? 4 : 2; }
  void* k_cache(int layer) const;  ///< E [num_blocks, nkv, block_size, hd]
  void* v_cache(int layer) const;

  EngineConfig cfg_;
  ModelConfig mc_;
  DeviceWeights w_;
  bool loaded_ = false;
  int num_sms_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  void* cublas_ws_ = nullptr;
  bool use_graphs_ = true;
  bool use_gemv_ = true;
  bool use_prefill_kernel_ = true;  ///< prefill slices through attention_prefill.cu (LLM_CUDA_PREFILL_KERNEL=0: off)
  bool f32_ = false;  ///< dtype f32: weights, KV cache and activations in float, no GEMV, pedantic f32 GEMMs
  /// EngineConfig::deterministic (batch invariance): > 0 runs every GEMM as cuBLAS calls of exactly this many
  /// rows (the last one padded), so the kernel cuBLAS picks, and with it each row's order of sums, never depends
  /// on how many tokens share the step; attention then runs unsplit. 0: the fastest kernels for each shape.
  int det_rows_ = 0;

  void* kv_ = nullptr;  ///< E: per layer the K cache, then the V cache
  int64_t num_blocks_ = 0;
  int block_size_ = 0;

  // Activations for up to tok_cap_ tokens; inputs in one int32 buffer of sections (tok_cap_ each,
  // cuda_backend.cc: kSections) then block_tables (bt_cap_).
  int tok_cap_ = 0;
  int64_t bt_cap_ = 0;
  std::vector<void*> act_allocs_;
  // f32 in both modes: residual x [T, dim], qkv [T, (nh+2nkv)*hd] (GEMM output before RoPE), delta [T, dim]
  // (O and down GEMM outputs). E: h [T, dim], q [T, nh*hd] (rotated), attn [T, nh*hd], gu [T, 2*hidden],
  // act [T, hidden], hf [T, dim] (final norm rows). kernels.h has the full layout.
  float *x_ = nullptr, *qkv_ = nullptr, *delta_ = nullptr;
  void *h_ = nullptr, *q_ = nullptr, *attn_ = nullptr, *gu_ = nullptr, *act_ = nullptr, *hf_ = nullptr;
  float* logits_ = nullptr;
  int32_t* ids_ = nullptr;
  float* part_ = nullptr;
  int32_t* in_dev_ = nullptr;
  int32_t* in_host_ = nullptr;   ///< pinned
  int32_t* ids_host_ = nullptr;  ///< pinned

  std::map<int, cudaGraphExec_t> graphs_;  ///< decode-only steps, by padded batch size
};

}  // namespace engine::cuda
