// The deterministic mode's GEMM: y = x @ w^T whose order of sums for a row never depends on M, from one
// cuBLASLt algorithm per weight shape. The algorithm (tile shape, split-K count, reduction scheme, stages) is
// chosen once, by cuBLASLt's heuristic at `ref_rows` rows, and then used as it is at every M: an output
// element is always the same tile code over the same K slices, summed in the same order, whichever tile it
// falls in. (The 128-row cuBLAS calls before it re-read the weights once per 128 rows; this is one call.)
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <map>
#include <tuple>

namespace engine::cuda {

class FixedOrderGemm {
 public:
  FixedOrderGemm(cudaStream_t stream, int ref_rows);
  ~FixedOrderGemm();
  FixedOrderGemm(const FixedOrderGemm&) = delete;
  FixedOrderGemm& operator=(const FixedOrderGemm&) = delete;

  /// x: bf16 [M, K], w: bf16 [N, K] -> y [M, N] (f32 when y_f32, else bf16). Throws std::runtime_error
  /// naming the shape when cuBLASLt has no algorithm for it or the one chosen does not take this M.
  void run(const void* x, const void* w, void* y, bool y_f32, int M, int N, int K);

 private:
  struct Shape {  ///< one weight shape and output type: the operation and its one algorithm
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  struct Rows {  ///< the layouts of x and y at one M
    cublasLtMatrixLayout_t b = nullptr, c = nullptr;
  };
  Shape& shape(int N, int K, bool y_f32);
  Rows& rows(const Shape& s, int M, int N, int K, bool y_f32);

  cudaStream_t stream_;
  int ref_rows_;
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_ = nullptr;
  std::map<std::tuple<int, int, bool>, Shape> shapes_;
  std::map<std::tuple<int, int, int, bool>, Rows> rows_;
};

}  // namespace engine::cuda
