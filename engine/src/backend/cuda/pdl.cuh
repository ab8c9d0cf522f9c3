// Programmatic dependent launch (Hopper, sm_90+): a kernel launched with launch_pdl() may be scheduled while
// the kernel before it on the stream is still running, so its launch and prologue overlap that kernel's tail
// instead of following it. The contract every such kernel keeps:
//   - before pdl_wait() it reads only what no earlier kernel of the step writes (weights, the rope table, its
//     own arguments; decode_attention with AttentionArgs::kv_before_wait: the step's inputs, copied from the
//     host before the step, and the K/V of earlier steps' tokens) and writes nothing but its own shared memory;
//   - pdl_wait() returns once every earlier kernel on the stream has finished and its writes are visible;
//   - pdl_launch_dependents() says the next kernel may be scheduled now (called early: that kernel's blocks
//     only ever wait in their own pdl_wait()).
// Kernels launched the ordinary way (<<<>>>, cuBLAS) keep full stream order before and after. Off with
// LLM_CUDA_PDL=0 (cuda_options.h), and on devices before sm_90, where both calls compile to nothing.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/cuda_check.h"

namespace engine::cuda {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/// Whether launch_pdl() asks for the overlap (set once per process from CudaOptions::pdl).
bool pdl_enabled();

/// The carveout every launch_pdl kernel asks for (CudaOptions::smem_carveout, set by set_kernel_carveout in
/// kernels.h; -1: none) and its one-time setter per kernel (cuda_options.cc).
int kernel_carveout();
void apply_kernel_carveout(const void* kernel);

/// kernel<<<grid, block, smem, s>>>(args...), with programmatic stream serialization when pdl_enabled().
template <typename... Params, typename... Args>
void launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, Args&&... args) {
  if (kernel_carveout() >= 0) apply_kernel_carveout(reinterpret_cast<const void*>(kernel));
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_enabled() ? 1 : 0;
  LLM_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(std::forward<Args>(args))...));
}

}  // namespace engine::cuda
