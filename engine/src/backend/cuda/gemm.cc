// The CUDA backend's GEMMs (gemm.h).
#include "backend/cuda/gemm.h"

#include <stdexcept>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

#define LLM_CUBLAS_CHECK(call)                                                                      \
  do {                                                                                              \
    cublasStatus_t st_ = (call);                                                                    \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                               \
      throw std::runtime_error(std::string("cuBLAS error in " #call ": ") + cublasGetStatusString(st_)); \
  } while (0)

namespace engine::cuda {
namespace {
constexpr size_t kCublasWorkspace = 32u << 20;
}  // namespace

Gemm::Gemm(cudaStream_t stream, const CudaOptions& opt) : stream_(stream), opt_(opt) {
  LLM_CUBLAS_CHECK(cublasCreate(&cublas_));
  LLM_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
  LLM_CUDA_CHECK(cudaMalloc(&workspace_, kCublasWorkspace));
  LLM_CUBLAS_CHECK(cublasSetWorkspace(cublas_, workspace_, kCublasWorkspace));
  // The default math mode (what a new handle has; set so that nothing inherited can change it) allows no
  // TF32 or BF16x9 emulation for f32 inputs. The f32 mode also asks for CUBLAS_COMPUTE_32F_PEDANTIC (run()),
  // which keeps f32 arithmetic whatever the math mode or the environment (NVIDIA_TF32_OVERRIDE, emulation
  // strategy) say. bf16 inputs use the tensor cores with f32 accumulation in either math mode.
  LLM_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
  if (!opt_.f32 && opt_.gemm_tma) tma_ = std::make_unique<TmaScratch>();
  if (!opt_.f32 && opt_.det_rows > 0 && opt_.det_fixed)
    tuned_ = std::make_unique<TunedGemm>(stream_, TunedGemm::Policy::kOrdered, opt_.gemm_log);
  else if (!opt_.f32 && opt_.det_rows == 0 && opt_.tuned_gemm != CudaOptions::TunedGemmMode::kOff)
    tuned_ = std::make_unique<TunedGemm>(stream_,
                                         opt_.tuned_gemm == CudaOptions::TunedGemmMode::kFastest
                                             ? TunedGemm::Policy::kFastest
                                             : TunedGemm::Policy::kOrdered,
                                         opt_.gemm_log);
}

Gemm::~Gemm() {
  if (cublas_) cublasDestroy(cublas_);
  if (workspace_) cudaFree(workspace_);
}

void Gemm::prepare(const std::vector<const void*>& weights, int N, int K, bool y_f32, int max_rows) {
  if (tuned_) tuned_->prepare(weights, N, K, y_f32, max_rows);
}

std::string Gemm::describe_tuned() const { return tuned_ ? tuned_->describe() : std::string(); }

bool Gemm::uses_gemv(int M, int K) const { return !opt_.f32 && opt_.gemv && M == 1 && gemv_supported(M, K); }

void Gemm::run(const void* x, const void* w, void* y, bool y_f32, int M, int N, int K) const {
  // Hopper, when asked for (LLM_CUDA_GEMM_TMA=1): the weights streamed by TMA, wgmma on them (gemm_tma.h,
  // docs/cuda-notes.md v19).
  if (tma_ && M >= opt_.gemm_tma_min_m && M <= opt_.gemm_tma_max_m && gemm_tma_supported(M, N, K, x, w)) {
    cuda::gemm_tma(static_cast<const bf16*>(x), static_cast<const bf16*>(w), y, y_f32, M, N, K, *tma_, stream_);
    return;
  }
  // Decode at small batch (bf16 mode): the unit-layout GEMV (one block per SM, rows cut into 1024-value units)
  // streams the weights faster than cuBLAS at M = 1 (docs/cuda-notes.md, v11) and, with the M rows of x in
  // shared memory, up to M = gemv_max_m (v12 has the measurement that chose it). The GEMV is bf16-only: the
  // f32 mode uses cuBLAS at every M; the deterministic mode never takes it (gemv = false).
  // The same stream on the tensor cores (v13): the work per weight byte does not grow with M. Only where x
  // fits in shared memory (at K = 11008 up to M = 9; x read through L1 measured far slower), unless
  // LLM_CUDA_GEMV_MMA_XSMEM=0 asks for the L1 path everywhere.
  if (!opt_.f32 && opt_.gemv && opt_.gemv_mma && M >= opt_.gemv_mma_min_m && M <= opt_.gemv_mma_max_m &&
      (opt_.gemv_mma_xsmem ? gemv_mma_x_in_shared(M, N, K) : gemv_mma_supported(M, N, K))) {
    cuda::gemv_mma(static_cast<const bf16*>(x), static_cast<const bf16*>(w), y, y_f32, M, N, K, stream_);
    return;
  }
  if (!opt_.f32 && opt_.gemv && opt_.gemv_units && M <= opt_.gemv_max_m && gemv_units_supported(M, N, K)) {
    cuda::gemv_units(static_cast<const bf16*>(x), static_cast<const bf16*>(w), y, y_f32, M, N, K, stream_);
    return;
  }
  // LLM_CUDA_GEMV_UNITS=0: gemv.cu's one-row-per-warp kernel at M = 1 (it lost to cuBLAS at M = 4: x re-read
  // from L1 per weight chunk).
  if (uses_gemv(M, K)) {
    cuda::gemv(static_cast<const bf16*>(x), static_cast<const bf16*>(w), y, y_f32, M, N, K, stream_);
    return;
  }
  // Decode at batch 2..64: the tensor-core skinny kernel streams the weights; cuBLAS picks kernels tuned for
  // larger M there (docs/cuda-notes.md, v8).
  if (!opt_.f32 && opt_.skinny && skinny_gemm_supported(M, N, K)) {
    skinny_gemm(static_cast<const bf16*>(x), static_cast<const bf16*>(w), y, y_f32, M, N, K, stream_);
    return;
  }
  if (tuned_) {
    // bf16: the algorithm timed fastest for this shape and row bucket at load (gemm_tuned.h); in the
    // deterministic mode the fastest of those that sum as ordered_gemm does.
    tuned_->run(x, w, y, y_f32, M, N, K);
    return;
  }
  // Row-major y[M,N] = x[M,K] @ w[N,K]^T is, column-major, y^T[N,M] = op(w)[N,K] @ x^T[K,M] with op = T.
  // f32 mode: f32 x f32 -> f32 with CUBLAS_COMPUTE_32F_PEDANTIC: standard f32 arithmetic, never TF32 (see
  // the constructor). bf16 mode: bf16 x bf16 -> bf16 or f32, f32 accumulation on the tensor cores.
  const cudaDataType in_t = opt_.f32 ? CUDA_R_32F : CUDA_R_16BF;
  const cudaDataType out_t = (opt_.f32 || y_f32) ? CUDA_R_32F : CUDA_R_16BF;
  const cublasComputeType_t compute = opt_.f32 ? CUBLAS_COMPUTE_32F_PEDANTIC : CUBLAS_COMPUTE_32F;
  const float alpha = 1.f, beta = 0.f;
  if (opt_.det_rows > 0) {
    // Deterministic in the f32 mode, or with LLM_CUDA_DET_FIXED=0: always det_rows rows per call (rows past
    // M are padding in buffers sized for it), so cuBLAS sees one shape whatever the batch; a row's result
    // depends only on that row of x.
    const int rows = opt_.det_rows;
    const size_t in_b = opt_.elem_bytes(), out_b = out_t == CUDA_R_32F ? 4 : 2;
    for (int m0 = 0; m0 < M; m0 += rows)
      LLM_CUBLAS_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, N, rows, K, &alpha, w, in_t, K,
                                    static_cast<const char*>(x) + size_t(m0) * K * in_b, in_t, K, &beta,
                                    static_cast<char*>(y) + size_t(m0) * N * out_b, out_t, N, compute,
                                    CUBLAS_GEMM_DEFAULT));
    return;
  }
  LLM_CUBLAS_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, w, in_t, K, x, in_t, K, &beta, y,
                                out_t, N, compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace engine::cuda
