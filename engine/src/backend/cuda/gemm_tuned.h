// y = x @ w^T (bf16 in) through the cuBLASLt algorithm measured fastest for each weight shape and row-count
// bucket, chosen once, before any step, among the heuristic's first offers. Two policies:
//
// - kFastest: any algorithm, split-K included, with up to 64 MiB of workspace (the default mode with
//   LLM_CUDA_TUNED_GEMM=fastest; measured no faster than cuBLAS's own choice, so not the default).
// - kOrdered (the deterministic mode): every element the same sum, in the same order, whatever M is:
//   ordered_gemm's sums (kernels.h: k in order, 16 products per tensor-core step, one f32 accumulator).
//   cuBLASLt's algorithms that do not split K compute exactly those sums on Hopper, whatever their tile shape,
//   stages or options (measured on the H200 with CUDA 13: every one of the ~250 algorithm and shape pairs the
//   heuristic offers for the Llama-2-7B shapes at M = 1..2,012 gave ordered_gemm's bits; each split-K count
//   gave bits of its own; docs/cuda-notes.md, v15). So the rows of one M can take the fastest such algorithm
//   for that M and still agree with every other M. Nothing here trusts that: an algorithm is used only after
//   its output on random x and the real weights matched ordered_gemm's bit for bit at that row count; where
//   none does, ordered_gemm itself runs (correct, slow, and said once on stderr).
//
// Row counts are cut into buckets, M in (2^(b-1), 2^b]; each bucket gets the fastest (kOrdered: checked)
// algorithm among the heuristic's first offers at its top row count, without workspace and with up to 64 MiB
// (the workspace the chosen ones need is allocated while choosing, never during a run). prepare() does the
// choosing (it runs kernels and waits for them), so it must run outside graph capture for every weight shape
// and every M to come; run() on an unprepared bucket prepares it, or throws std::logic_error while the stream
// is capturing. An M the bucket's algorithm does not take (or, kFastest, whose workspace would not fit) runs
// ordered_gemm (kOrdered) or cublasLt's heuristic choice for that M (kFastest).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace engine::cuda {

class TunedGemm {
 public:
  enum class Policy { kFastest, kOrdered };
  /// verbose: each offer's time (and kOrdered: check) on stderr (LLM_CUDA_GEMM_LOG=1).
  TunedGemm(cudaStream_t stream, Policy policy, bool verbose = false);
  ~TunedGemm();
  TunedGemm(const TunedGemm&) = delete;
  TunedGemm& operator=(const TunedGemm&) = delete;

  /// Chooses the algorithms of every bucket up to max_rows for y[M, N] = x[M, K] @ w[N, K]^T: checked on
  /// weights[0], timed over all of weights (the layers' copies of this shape, so that the timing reads them
  /// from memory as a step does, not from L2). Needs room for x, y and (kOrdered) ordered_gemm's y at the largest
  /// bucket's rows, for the while: throws engine::ModelLoadError naming the shape and the MiB where there is none.
  void prepare(const std::vector<const void*>& weights, int N, int K, bool y_f32, int max_rows);
  /// x: bf16 [M, K], w: bf16 [N, K] -> y [M, N] (f32 when y_f32, else bf16). M = 0 returns at once.
  void run(const void* x, const void* w, void* y, bool y_f32, int M, int N, int K);
  /// What each prepared bucket runs, one line per shape ("N x K f32: <=1 a66/t10/o1/s1 ..."), for logs and notes.
  std::string describe() const;

  static int bucket_of(int M);  ///< ceil(log2(M)) for M >= 1

 private:
  struct Choice {
    bool chosen = false;
    bool reference = false;  ///< kOrdered, no algorithm matched ordered_gemm: run it instead
    cublasLtMatmulAlgo_t algo{};
  };
  struct Shape {  ///< one weight shape and output type: the operation and each bucket's choice
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr;
    std::vector<Choice> buckets;
  };
  struct Rows {  ///< the layouts of x and y at one M; the algorithm for this M and whether there is one
    cublasLtMatrixLayout_t b = nullptr, c = nullptr;
    bool algo_ok = false;
    cublasLtMatmulAlgo_t algo{};
  };
  using ShapeKey = std::tuple<int, int, bool>;
  Shape& shape(int N, int K, bool y_f32);
  Rows& rows(const Shape& s, int M, int N, int K, bool y_f32);
  void choose(Shape& s, int b, const std::vector<const void*>& weights, int N, int K, bool y_f32, int rows);
  std::vector<cublasLtMatmulAlgo_t> offers(const Shape& s, cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c) const;
  void reserve_workspace(size_t bytes);

  cudaStream_t stream_;
  Policy policy_;
  bool verbose_;
  cublasLtHandle_t lt_ = nullptr;
  unsigned long long* count_ = nullptr;  ///< device counter for the bit checks
  void* workspace_ = nullptr;            ///< what the chosen algorithms need
  size_t workspace_bytes_ = 0;
  std::vector<void*> retired_;  ///< smaller workspaces that graphs may still hold
  std::map<ShapeKey, Shape> shapes_;
  std::map<std::tuple<int, int, int, bool>, Rows> rows_;
  bool warned_ = false;
};

}  // namespace engine::cuda
