// The CUDA backend's class, shared by the source files that define it: cuda_backend.cc (device setup,
// memory, staging, graphs, copies), cuda_layer_pass.cc (the layer pass), cuda_profile.cc (the profiled pass)
// and cuda_weights.cc (weight upload).
// Not for use outside src/backend/cuda/.
#pragma once

#include <cuda_runtime_api.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_graphs.h"
#include "backend/cuda/cuda_options.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/step_inputs.h"

namespace engine::cuda {

class ProfileMarks;  // cuda_profile.h

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
  std::string dtype() const override { return opt_.f32 ? "f32" : "bf16"; }
  void load(const ModelWeights& w) override;
  int64_t kv_bytes_per_token() const override;
  int64_t default_kv_budget_bytes() const override;
  void allocate_kv_cache(int64_t num_blocks, int block_size) override;
  void forward(const StepBatch& batch, float* logits) override;
  void forward_argmax(const StepBatch& batch, int32_t* token_ids) override;
  int vocab_size() const override { return loaded_ ? mc_.vocab_size : 0; }

  std::vector<std::pair<std::string, double>> profile(const StepBatch& batch);  ///< cuda_profile.cc
  void fill_kv(float amp, uint64_t seed);

 private:
  /// One staged step: the shapes staging wrote (step_inputs.h) and the attention splits; what a graph is
  /// specialised on.
  struct Step : StagedInputs {
    int num_splits = 1;  ///< attention context splits (of the decode list when n_tiles > 0)
  };
  Step stage_inputs(const StepBatch& b, int pad_to);
  void run_layers(const Step& st, ProfileMarks* marks);
  template <typename E>
  void run_layers_as(const Step& st, ProfileMarks* marks);  ///< the pass with storage type E (cuda_layer_pass.cc)
  void run(const StepBatch& b);
  /// Captures (and runs once, on padding rows) the decode graph of every padded batch size up to max_num_seqs.
  void capture_decode_graphs();
  void ensure_capacity(int tokens, int64_t bt_entries);
  void prepare_gemms(int max_rows);
  void free_activations();
  int splits_for(int T) const;
  InputLayout input_layout() const { return InputLayout{tok_cap_}; }
  void* k_cache(int layer) const;  ///< E (or fp8) [num_blocks, nkv, block_size, hd]
  void* v_cache(int layer) const;
  float* k_scale(int layer) const;  ///< fp8 only: [num_blocks, nkv, block_size]
  float* v_scale(int layer) const;
  int64_t kv_elem_bytes() const { return opt_.fp8_kv ? 1 : static_cast<int64_t>(opt_.elem_bytes()); }
  char* kv_part(int layer, int part) const;  ///< 0: K, 1: V, 2: K scales, 3: V scales

  EngineConfig cfg_;
  CudaOptions opt_;  ///< the mode and switches, read once (cuda_options.h)
  ModelConfig mc_;
  DeviceWeights w_;
  bool loaded_ = false;
  bool use_decode_attention_ = false;  ///< decode rows through decode_attention (attn_v2 and a kernel for hd)
  int num_sms_ = 0;
  cudaStream_t stream_ = nullptr;
  std::optional<Gemm> gemm_;  ///< made once stream_ exists, reset before it is destroyed

  void* kv_ = nullptr;  ///< per layer the K cache, then the V cache (E, or fp8 followed by their scales)
  int64_t num_blocks_ = 0;
  int block_size_ = 0;

  // Activations for up to tok_cap_ tokens; inputs in one int32 buffer laid out by input_layout() (step_inputs.h)
  // with room for bt_cap_ block-table entries.
  int tok_cap_ = 0;
  int64_t bt_cap_ = 0;
  std::vector<void*> act_allocs_;
  // f32 in both modes: residual x [T, dim], qkv [T, (nh+2nkv)*hd] (GEMM output before RoPE), delta [T, dim]
  // (O and down GEMM outputs). E: h [T, dim], q [T, nh*hd] (rotated), attn [T, nh*hd], gu [T, 2*hidden],
  // act [T, hidden], hf [T, dim] (final norm rows). kernels.h has the full layout. x_alt_: f32 [kGemvMaxM, dim],
  // where a fused add+RMSNorm GEMV writes the updated residual (run_layers_as alternates x_ and x_alt_).
  float *x_ = nullptr, *x_alt_ = nullptr, *qkv_ = nullptr, *delta_ = nullptr;
  void *h_ = nullptr, *q_ = nullptr, *attn_ = nullptr, *gu_ = nullptr, *act_ = nullptr, *hf_ = nullptr;
  float* logits_ = nullptr;
  int32_t* ids_ = nullptr;
  float* part_ = nullptr;
  int* split_count_ = nullptr;  ///< the split blocks' counters (AttentionArgs::split_count)
  int32_t* in_dev_ = nullptr;
  int32_t* in_host_ = nullptr;   ///< pinned
  int32_t* ids_host_ = nullptr;  ///< pinned

  GraphCache graphs_;  ///< decode-only steps (cuda_graphs.h)
};

}  // namespace engine::cuda
