// TMA tensor maps (tensor_map.h).
#include "backend/cuda/tensor_map.h"

#include <cuda_bf16.h>
#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

#include "backend/cuda/cuda_check.h"

namespace engine::cuda {
namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_tiled(const char* what) {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q{};
    LLM_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q));
    return q == cudaDriverEntryPointSuccess ? reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p) : nullptr;
  }();
  if (!fn) throw std::runtime_error(std::string(what) + ": the driver has no cuTensorMapEncodeTiled");
  return fn;
}

}  // namespace

CUtensorMap bf16_tile_map(const void* base, int rows, int cols, int box_rows, int box_cols, const char* what) {
  CUtensorMap m;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(cols) * sizeof(__nv_bfloat16)};
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(box_cols), static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t elem[2] = {1, 1};
  const CUresult r = encode_tiled(what)(&m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(base), dims,
                                        strides, box, elem, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                        CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw std::runtime_error(std::string(what) + ": cuTensorMapEncodeTiled failed (" +
                             std::to_string(static_cast<int>(r)) + ") for a " + std::to_string(rows) + " x " +
                             std::to_string(cols) + " matrix in boxes of " + std::to_string(box_rows) + " x " +
                             std::to_string(box_cols));
  return m;
}

}  // namespace engine::cuda
