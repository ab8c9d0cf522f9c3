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

struct DeviceLayer {
  bf16* wqkv = nullptr;   ///< [(nh + 2*nkv)*hd, dim]: wq, wk, wv rows concatenated (one GEMM)
  bf16* wo = nullptr;     ///< [dim, nh*hd]
  bf16* wgu = nullptr;    ///< [2*hidden, dim]: w_gate rows, then w_up rows (one GEMM)
  bf16* wd = nullptr;     ///< [dim, hidden]
  float* attn_norm = nullptr;  ///< [dim]
  float* ffn_norm = nullptr;   ///< [dim]
};

/// All weights on the device. `allocations` owns every pointer above.
struct DeviceWeights {
  ModelConfig cfg;
  bf16* tok_emb = nullptr;     ///< [vocab, dim]
  bf16* lm_head = nullptr;     ///< [vocab, dim]; == tok_emb when tied
  float* final_norm = nullptr; ///< [dim]
  float2* rope = nullptr;      ///< [rope_len, hd/2] (cos, sin)
  int rope_len = 0;
  std::vector<DeviceLayer> layers;
  std::vector<void*> allocations;
  int64_t bytes = 0;           ///< device bytes of the weights
  int64_t bytes_read_per_token_step = 0;  ///< every layer matrix + lm_head (what one decode step streams)
  void free_all();
};

/// Converts (f32/f16/bf16 -> bf16 matrices, f32 norms) and uploads `w`; rope table for `rope_len`
/// positions. Throws ModelLoadError naming the tensor whose shape does not match the config.
DeviceWeights upload_weights(const ModelWeights& w, int rope_len);

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const EngineConfig& cfg);
  ~CudaBackend() override;
  std::string name() const override { return "cuda"; }
  std::string dtype() const override { return "bf16"; }
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
    int num_splits = 1; ///< attention context splits
  };
  struct Marks;  // profiling events, cuda_backend.cc
  Step stage_inputs(const StepBatch& b, int pad_to);
  void run_layers(const Step& st, Marks* marks);
  Step run(const StepBatch& b);
  void ensure_capacity(int tokens, int64_t bt_entries);
  void free_activations();
  int splits_for(int T) const;
  int graph_size_for(int T) const;
  void gemm(const bf16* x, const bf16* w, void* y, bool y_f32, int M, int N, int K);
  bf16* k_cache(int layer) const;
  bf16* v_cache(int layer) const;

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

  bf16* kv_ = nullptr;
  int64_t num_blocks_ = 0;
  int block_size_ = 0;

  // Activations for up to tok_cap_ tokens; inputs in one int32 buffer of sections (tok_cap_ each,
  // cuda_backend.cc: kSections) then block_tables (bt_cap_).
  int tok_cap_ = 0;
  int64_t bt_cap_ = 0;
  std::vector<void*> act_allocs_;
  float* x_ = nullptr;
  bf16 *h_ = nullptr, *qkv_ = nullptr, *attn_ = nullptr, *delta_ = nullptr, *gu_ = nullptr, *act_ = nullptr,
       *hf_ = nullptr;
  float* logits_ = nullptr;
  int32_t* ids_ = nullptr;
  float* part_ = nullptr;
  int32_t* in_dev_ = nullptr;
  int32_t* in_host_ = nullptr;   ///< pinned
  int32_t* ids_host_ = nullptr;  ///< pinned

  std::map<int, cudaGraphExec_t> graphs_;  ///< decode-only steps, by padded batch size
};

}  // namespace engine::cuda
