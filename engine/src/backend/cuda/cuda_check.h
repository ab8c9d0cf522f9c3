// Error checks for CUDA runtime and cuBLAS calls: every call's status is checked, and each kernel
// launch is followed by cudaGetLastError (a launch error surfaces there, not in the return code).
#pragma once

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace engine::cuda {

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* what, const char* file, int line) {
  throw std::runtime_error(std::string("CUDA error in ") + what + " at " + file + ":" + std::to_string(line) +
                           ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

}  // namespace engine::cuda

#define LLM_CUDA_CHECK(call)                                                       \
  do {                                                                             \
    cudaError_t llm_e_ = (call);                                                   \
    if (llm_e_ != cudaSuccess) ::engine::cuda::throw_cuda(llm_e_, #call, __FILE__, __LINE__); \
  } while (0)

/// After a <<<...>>> launch.
#define LLM_CUDA_LAUNCHED(name) LLM_CUDA_CHECK(cudaGetLastError())
