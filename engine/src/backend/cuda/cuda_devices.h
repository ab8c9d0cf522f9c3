// How many CUDA devices this process sees. Plain C++ (no CUDA headers), for the settings checks.
#pragma once

namespace engine::cuda {

/// cudaGetDeviceCount(), or 0 when the driver or runtime reports an error (no GPU, no driver).
int visible_devices();

}  // namespace engine::cuda
