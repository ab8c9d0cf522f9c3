// FixedOrderGemm (gemm_fixed.h).
#include "backend/cuda/gemm_fixed.h"

#include <stdexcept>
#include <string>

#include "backend/cuda/cuda_check.h"

namespace engine::cuda {
namespace {

constexpr size_t kWorkspace = 32u << 20;

void lt_check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLASLt error in ") + what + ": " + cublasGetStatusString(st));
}

std::string shape_name(int M, int N, int K) {
  return "[" + std::to_string(M) + " x " + std::to_string(K) + "] @ [" + std::to_string(N) + " x " + std::to_string(K) + "]^T";
}

}  // namespace

FixedOrderGemm::FixedOrderGemm(cudaStream_t stream, int ref_rows) : stream_(stream), ref_rows_(ref_rows) {
  lt_check(cublasLtCreate(&lt_), "cublasLtCreate");
  LLM_CUDA_CHECK(cudaMalloc(&workspace_, kWorkspace));
}

FixedOrderGemm::~FixedOrderGemm() {
  for (auto& [k, r] : rows_) {
    cublasLtMatrixLayoutDestroy(r.b);
    cublasLtMatrixLayoutDestroy(r.c);
  }
  for (auto& [k, s] : shapes_) {
    cublasLtMatrixLayoutDestroy(s.a);
    cublasLtMatmulDescDestroy(s.op);
  }
  if (workspace_) cudaFree(workspace_);
  if (lt_) cublasLtDestroy(lt_);
}

// Row-major y[M,N] = x[M,K] @ w[N,K]^T is, column-major, y^T[N,M] = op(w)[N,K] @ x^T[K,M] with op = T: A = w
// (K x N, transposed), B = x (K x M), C = D = y (N x M).
FixedOrderGemm::Shape& FixedOrderGemm::shape(int N, int K, bool y_f32) {
  const auto key = std::make_tuple(N, K, y_f32);
  if (auto it = shapes_.find(key); it != shapes_.end()) return it->second;
  Shape s;
  lt_check(cublasLtMatmulDescCreate(&s.op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  lt_check(cublasLtMatmulDescSetAttribute(s.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "TRANSA");
  lt_check(cublasLtMatmulDescSetAttribute(s.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "TRANSB");
  lt_check(cublasLtMatrixLayoutCreate(&s.a, CUDA_R_16BF, K, N, K), "layout A");
  // The heuristic's first choice at ref_rows rows; pointers 16-byte aligned.
  cublasLtMatrixLayout_t ref_b, ref_c;
  lt_check(cublasLtMatrixLayoutCreate(&ref_b, CUDA_R_16BF, K, ref_rows_, K), "layout B");
  lt_check(cublasLtMatrixLayoutCreate(&ref_c, y_f32 ? CUDA_R_32F : CUDA_R_16BF, N, ref_rows_, N), "layout C");
  cublasLtMatmulPreference_t pref;
  lt_check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  // No workspace: an algorithm that splits K into a workspace needs room in proportion to M (2,012 rows at
  // K = 11,008 outgrew 32 MiB), and the graphs cannot grow it. Without one, no split-K reduction in memory.
  const uint64_t ws = 0;
  const uint32_t align = 16;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
  for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof align);
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt_, s.op, s.a, ref_b, ref_c, ref_c, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(ref_b);
  cublasLtMatrixLayoutDestroy(ref_c);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0)
    throw std::runtime_error("deterministic GEMM: cuBLASLt has no algorithm for " + shape_name(ref_rows_, N, K));
  s.algo = result.algo;
  return shapes_.emplace(key, s).first->second;
}

FixedOrderGemm::Rows& FixedOrderGemm::rows(const Shape& s, int M, int N, int K, bool y_f32) {
  const auto key = std::make_tuple(M, N, K, y_f32);
  if (auto it = rows_.find(key); it != rows_.end()) return it->second;
  Rows r;
  lt_check(cublasLtMatrixLayoutCreate(&r.b, CUDA_R_16BF, K, M, K), "layout B");
  lt_check(cublasLtMatrixLayoutCreate(&r.c, y_f32 ? CUDA_R_32F : CUDA_R_16BF, N, M, N), "layout C");
  Rows& out = rows_.emplace(key, r).first->second;
  // Each M is checked against the shape's algorithm once, when its layouts are made.
  cublasLtMatmulHeuristicResult_t check{};
  if (cublasLtMatmulAlgoCheck(lt_, s.op, s.a, out.b, out.c, out.c, &s.algo, &check) != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error("deterministic GEMM: the algorithm chosen for " + shape_name(ref_rows_, N, K) +
                             " does not take " + std::to_string(M) + " rows");
  if (check.workspaceSize > kWorkspace)
    throw std::runtime_error("deterministic GEMM: " + shape_name(M, N, K) + " needs more workspace than it has");
  return out;
}

void FixedOrderGemm::run(const void* x, const void* w, void* y, bool y_f32, int M, int N, int K) {
  if (M == 0) return;  // a step whose chunks sample no token asks lm_head for no rows
  Shape& s = shape(N, K, y_f32);
  Rows& r = rows(s, M, N, K, y_f32);
  const float alpha = 1.f, beta = 0.f;
  lt_check(cublasLtMatmul(lt_, s.op, &alpha, w, s.a, x, r.b, &beta, y, r.c, y, r.c, &s.algo, workspace_, kWorkspace,
                          stream_),
           "cublasLtMatmul");
}

}  // namespace engine::cuda
