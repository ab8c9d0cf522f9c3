// The CUDA backend's GEMM choice: for each y = x @ w^T of the pass, the bf16 GEMV (up to gemv_max_m rows) or one
// cuBLAS call (LLM_CUDA_TUNED_GEMM=fastest|ordered: the cuBLASLt algorithm TunedGemm timed for the shape and row
// bucket, gemm_tuned.h); in the deterministic mode the fastest algorithm that sums as ordered_gemm does at every M
// (bf16), or cuBLAS calls of a fixed row count (the f32 mode, or LLM_CUDA_DET_FIXED=0); pedantic f32 in the f32
// mode.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/cuda_options.h"
#include "backend/cuda/gemm_tma.h"
#include "backend/cuda/gemm_tuned.h"

namespace engine::cuda {

/// Owns the cuBLAS handle (bound to the backend's stream) and its workspace.
class Gemm {
 public:
  Gemm(cudaStream_t stream, const CudaOptions& opt);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  /// x: E [M, K], w: E [N, K] -> y [M, N]: f32 when y_f32 (always in the f32 mode), else E. With det_rows > 0,
  /// x and y need rows up to M rounded up to det_rows (padding rows: their results are not read).
  void run(const void* x, const void* w, void* y, bool y_f32, int M, int N, int K) const;
  /// Whether run() takes a bf16 GEMV for this one-row shape (M = 1 in the bf16 mode, unless switched off or
  /// deterministic): where the fused GEMVs (kernels.h, one row only) may replace it and the kernel before it.
  /// False for M > 1 even where run() takes gemv_units there (M <= CudaOptions::gemv_max_m).
  bool uses_gemv(int M, int K) const;
  /// bf16: choose (deterministic: and check) the algorithms for one weight shape up to max_rows rows
  /// (TunedGemm::prepare; outside graph capture). A no-op where no TunedGemm is in use.
  void prepare(const std::vector<const void*>& weights, int N, int K, bool y_f32, int max_rows);
  /// TunedGemm::describe(), or "" when it is not in use.
  std::string describe_tuned() const;

 private:
  cudaStream_t stream_;
  CudaOptions opt_;
  cublasHandle_t cublas_ = nullptr;
  void* workspace_ = nullptr;
  std::unique_ptr<TmaScratch> tma_;  ///< gemm_tma's partial tiles and counters, when CudaOptions::gemm_tma is on
  std::unique_ptr<TunedGemm> tuned_;  ///< bf16: kOrdered when deterministic (unless LLM_CUDA_DET_FIXED=0), else per LLM_CUDA_TUNED_GEMM
};

}  // namespace engine::cuda
