// NcclGroup: ncclCommInitAll over the first n devices, and the two collectives tensor parallelism needs.
#include "backend/cuda/nccl_group.h"

#ifdef LLM_HAVE_NCCL
#include <stdexcept>
#include <string>

namespace engine::cuda {
namespace {

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw std::runtime_error(std::string("NCCL ") + what + ": " + ncclGetErrorString(r));
}

}  // namespace

NcclGroup::NcclGroup(int n) {
  int visible = 0;
  if (cudaGetDeviceCount(&visible) != cudaSuccess) visible = 0;
  if (n < 1 || n > visible)
    throw std::runtime_error("NCCL: " + std::to_string(n) + " ranks asked for, " + std::to_string(visible) +
                             " CUDA devices visible");
  std::vector<int> devices(n);
  for (int i = 0; i < n; ++i) devices[i] = i;
  comms_.resize(n);
  check(ncclCommInitAll(comms_.data(), n, devices.data()), "ncclCommInitAll");
}

NcclGroup::~NcclGroup() {
  for (ncclComm_t c : comms_) ncclCommDestroy(c);
}

void NcclGroup::all_reduce_sum(int rank, float* buf, size_t count, cudaStream_t stream) const {
  check(ncclAllReduce(buf, buf, count, ncclFloat32, ncclSum, comms_.at(rank), stream), "ncclAllReduce");
}

void NcclGroup::all_gather(int rank, const float* send, float* recv, size_t count, cudaStream_t stream) const {
  check(ncclAllGather(send, recv, count, ncclFloat32, comms_.at(rank), stream), "ncclAllGather");
}

}  // namespace engine::cuda
#endif
