// The NCCL communicators of tensor parallelism, one process with one thread per GPU (docs/tensor-parallel.md
// says why): ncclCommInitAll makes all N at once, no unique-id bootstrap between processes. Rank r is device
// r, and its thread makes every call for it, on its own stream, so the collectives can be captured into that
// rank's CUDA graphs like any kernel. Only CUDA builds with NCCL (LLM_HAVE_NCCL) have it.
#pragma once

#ifdef LLM_HAVE_NCCL
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstddef>
#include <vector>

namespace engine::cuda {

class NcclGroup {
 public:
  /// Communicators over devices 0 .. n-1. Throws std::runtime_error with NCCL's reason (and n, the devices
  /// visible) when they cannot be made.
  explicit NcclGroup(int n);
  ~NcclGroup();
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;

  int size() const { return static_cast<int>(comms_.size()); }
  /// buf [count] f32 on rank's device: replaced by the sum over the ranks (in place), enqueued on `stream`.
  void all_reduce_sum(int rank, float* buf, size_t count, cudaStream_t stream) const;
  /// recv [size() * count] = every rank's send [count], rank order, enqueued on `stream`.
  void all_gather(int rank, const float* send, float* recv, size_t count, cudaStream_t stream) const;

 private:
  std::vector<ncclComm_t> comms_;
};

}  // namespace engine::cuda
#endif
