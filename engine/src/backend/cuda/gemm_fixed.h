// The deterministic mode's GEMM: y = x @ w^T where every element is the same sum, in the same order, whatever
// M is: ordered_gemm's sums (kernels.h: k in order, 16 products per tensor-core step, one f32 accumulator).
//
// cuBLASLt's algorithms that do not split K compute exactly those sums on Hopper, whatever their tile shape,
// stages or options (measured on the H200 with CUDA 13: every one of ~100 algorithms the heuristic offers for
// the Llama-2-7B shapes at M = 1..2,012 gave ordered_gemm's bits; each split-K count gave bits of its own;
// docs/cuda-notes.md, v15). So the rows of one M can take the fastest such algorithm for that M and still
// agree with every other M. Nothing here trusts that: an algorithm is used only after its output on random x
// and the real weights matched ordered_gemm's bit for bit at that row count; where none does, ordered_gemm
// itself runs (correct, slow, and said once on stderr).
//
// Row counts are cut into buckets, M in (2^(b-1), 2^b]; each bucket gets the fastest checked algorithm among
// the heuristic's first offers at its top row count (none that splits K; the workspace some of them ask for
// is allocated while choosing, never during a run). prepare() does the choosing (it runs kernels and waits
// for them), so it must run outside graph capture for every weight shape and every M to come; run() on an
// unprepared bucket prepares it, or throws std::logic_error while the stream is capturing.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace engine::cuda {

class FixedOrderGemm {
 public:
  /// verbose: each offer's check on stderr (LLM_CUDA_DET_LOG=1).
  explicit FixedOrderGemm(cudaStream_t stream, bool verbose = false);
  ~FixedOrderGemm();
  FixedOrderGemm(const FixedOrderGemm&) = delete;
  FixedOrderGemm& operator=(const FixedOrderGemm&) = delete;

  /// Chooses the algorithms of every bucket up to max_rows for y[M, N] = x[M, K] @ w[N, K]^T: checked on
  /// weights[0], timed over all of weights (the layers' copies of this shape, so that the timing reads them
  /// from memory as a step does, not from L2). Needs room for x, y and ordered_gemm's y at max_rows rows.
  void prepare(const std::vector<const void*>& weights, int N, int K, bool y_f32, int max_rows);
  /// x: bf16 [M, K], w: bf16 [N, K] -> y [M, N] (f32 when y_f32, else bf16). M = 0 returns at once.
  void run(const void* x, const void* w, void* y, bool y_f32, int M, int N, int K);
  /// What each prepared bucket runs, one line per shape ("N x K f32: <=1 a66/t10/o1 ..."), for logs and notes.
  std::string describe() const;

  static int bucket_of(int M);  ///< ceil(log2(M)) for M >= 1

 private:
  struct Choice {
    bool chosen = false;
    bool reference = false;  ///< no algorithm matched ordered_gemm: run it instead
    cublasLtMatmulAlgo_t algo{};
  };
  struct Shape {  ///< one weight shape and output type: the operation and each bucket's choice
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr;
    std::vector<Choice> buckets;
  };
  struct Rows {  ///< the layouts of x and y at one M, and whether the bucket's algorithm takes this M
    cublasLtMatrixLayout_t b = nullptr, c = nullptr;
    bool algo_ok = false;
  };
  using ShapeKey = std::tuple<int, int, bool>;
  Shape& shape(int N, int K, bool y_f32);
  Rows& rows(const Shape& s, int M, int N, int K, bool y_f32);
  void choose(Shape& s, int b, const std::vector<const void*>& weights, int N, int K, bool y_f32, int rows);
  void reserve_workspace(size_t bytes);

  cudaStream_t stream_;
  cublasLtHandle_t lt_ = nullptr;
  bool verbose_;
  unsigned long long* count_ = nullptr;  ///< device counter for the bit checks
  void* workspace_ = nullptr;            ///< what the chosen algorithms need (none split K)
  size_t workspace_bytes_ = 0;
  std::map<ShapeKey, Shape> shapes_;
  std::map<std::tuple<int, int, int, bool>, Rows> rows_;
  bool warned_ = false;
};

}  // namespace engine::cuda
