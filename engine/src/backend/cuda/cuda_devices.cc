#include "backend/cuda/cuda_devices.h"

#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_check.h"

namespace engine::cuda {

int visible_devices() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls are not blamed for it
    return 0;
  }
  return n;
}

namespace {
int device_attribute(cudaDeviceAttr attr) {
  int dev = 0, v = 0;
  LLM_CUDA_CHECK(cudaGetDevice(&dev));
  LLM_CUDA_CHECK(cudaDeviceGetAttribute(&v, attr, dev));
  return v;
}
}  // namespace

int device_sm_count() {
  static const int n = device_attribute(cudaDevAttrMultiProcessorCount);
  return n;
}

int device_smem_optin() {
  static const int n = device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin);
  return n;
}

int device_l2_bytes() {
  static const int n = device_attribute(cudaDevAttrL2CacheSize);
  return n;
}

bool device_is_sm90() {
  static const bool yes = [] {
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
    return major == 9;
  }();
  return yes;
}

}  // namespace engine::cuda
