// The CPU backend's GEMM: C[M, N] = A[M, K] · W[N, K]^T + beta · C over a weight repacked once at load.
//
// OpenBLAS's sgemm copies (packs) W on every call; with the few rows of a decode step that copy costs more
// than the multiply (at batch 8 on llama-100m, 38 % of the step was sgemm_incopy against 17 % in the kernel).
// Here W is packed once, into column panels of 16 outputs stored k-major, and each call streams every panel
// once from memory while all M rows are multiplied against it (row blocks of at most 8 with AVX-512, each
// row's 16 outputs one zmm register; of at most 6 with AVX2, a 6 x 16 tile in twelve ymm registers).
//
// Every output element is one sum over k = 0..K-1 in order, fused multiply-adds into one accumulator,
// whatever M, the row blocking or the thread count: a row's result does not depend on the other rows of the
// step, so the kernel is batch-invariant by construction (EngineConfig::deterministic costs nothing on CPU).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>

namespace engine::cpu {

class PackedWeight {
 public:
  static constexpr int kPanel = 16;  ///< output columns per panel

  PackedWeight() = default;
  /// Packs w [n, k] (row-major, PyTorch Linear layout [out, in]); columns past n in the last panel are zero.
  PackedWeight(const float* w, int n, int k);

  int n() const { return n_; }
  int k() const { return k_; }
  int num_panels() const { return (n_ + kPanel - 1) / kPanel; }
  /// Panel p: [k][kPanel] floats, outputs 16p .. 16p+15; 64-byte aligned.
  const float* panel(int p) const { return data_.get() + int64_t(p) * kPanel * k_; }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  int n_ = 0, k_ = 0;
  std::unique_ptr<float[], Free> data_;
};

/// C[M, N] = A[M, K] · W^T + beta · C, with N = W.n(), K = W.k(); lda = K, ldc = N. The panels are split over
/// the OpenMP team of the calling thread (small products run on the caller alone). beta 0 never reads C.
void packed_linear(float* C, const float* A, const PackedWeight& W, int M, float beta);

/// The instruction set packed_linear runs on: "avx512f" or "avx2+fma" (both one fused multiply-add per k, the
/// same bits) or "generic" (plain C++ multiply-then-add, for machines without AVX2/FMA). The best the machine
/// has, unless LLM_CPU_GEMM_ISA=avx2|generic (read once) asks for less.
const char* packed_gemm_isa();

/// Orders the kernels from least to most capable.
enum class GemmIsa { kGeneric, kAvx2, kAvx512, kAuto };
/// Makes packed_linear use `isa` or, when the machine lacks it, the best it has below it (kAuto: back to the
/// machine's best under LLM_CPU_GEMM_ISA); returns the one now in use. Process-wide, for tests and benchmarks
/// that compare the kernels; not to be called while a packed_linear runs.
GemmIsa set_packed_gemm_isa(GemmIsa isa);

}  // namespace engine::cpu
