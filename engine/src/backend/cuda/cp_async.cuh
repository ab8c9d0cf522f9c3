// Asynchronous global -> shared copies (cp.async, sm_80+), shared by the kernels that stream through a ring of
// shared-memory stages (gemv_ordered.cu, attention_decode.cu). A thread's copies become visible to it after its
// cp_async_wait<N>() (at most N of its committed groups still in flight); to other threads after that and a
// barrier that includes them (__syncwarp / __syncthreads).
#pragma once

#include <cuda_runtime.h>

namespace engine::cuda {

/// 16 bytes, cached in L2 only (.cg: a stream read once).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(gmem) : "memory");
}
/// 16 bytes, or 16 zero bytes and no read of gmem when !fill.
__device__ __forceinline__ void cp_async16_or_zero(void* smem, const void* gmem, bool fill) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(s), "l"(gmem), "r"(fill ? 16 : 0) : "memory");
}
/// 4 bytes, or 4 zero bytes and no read when !fill.
__device__ __forceinline__ void cp_async4_or_zero(void* smem, const void* gmem, bool fill) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(s), "l"(gmem), "r"(fill ? 4 : 0) : "memory");
}
/// Closes the thread's copies issued since the last commit into one group (an empty group is allowed).
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
/// Waits until at most N of the thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

}  // namespace engine::cuda
