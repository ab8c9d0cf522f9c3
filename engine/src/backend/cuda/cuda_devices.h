// How many CUDA devices this process sees. Plain C++ (no CUDA headers), for the settings checks.
#pragma once

namespace engine::cuda {

/// cudaGetDeviceCount(), or 0 when the driver or runtime reports an error (no GPU, no driver).
int visible_devices();

/// The current device's SM count and the shared memory one block may opt in to (bytes), read once per process
/// (the kernels that size their grids or buffers from them; a runtime error throws, as LLM_CUDA_CHECK does).
int device_sm_count();
int device_smem_optin();
/// The current device's L2 cache size in bytes (read once per process).
int device_l2_bytes();
/// Whether the current device is compute capability 9.x (Hopper: wgmma, TMA, bulk copies); false where the
/// runtime reports an error. Read once per process.
bool device_is_sm90();

}  // namespace engine::cuda
