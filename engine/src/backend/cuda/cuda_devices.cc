#include "backend/cuda/cuda_devices.h"

#include <cuda_runtime_api.h>

namespace engine::cuda {

int visible_devices() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls are not blamed for it
    return 0;
  }
  return n;
}

}  // namespace engine::cuda
