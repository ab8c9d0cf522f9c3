// Device helper shared by the kernels that read the fp8 KV cache (attention.cu, attention_decode.cu,
// attention_prefill.cu): e4m3 bytes to floats. A stored value is e4m3 * the row's scale (rope_kv.cu writes
// both); callers apply the scale.
#pragma once

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace engine::cuda {

/// 8 e4m3 bytes (held in a uint2, byte k = element k) -> f[0..7], unscaled.
__device__ __forceinline__ void e4m3x8_to_f32(const uint2& r, float* f) {
  const uint32_t w[2] = {r.x, r.y};
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const __half2_raw h2 =
          __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(w[i] >> (16 * j)), __NV_E4M3);
      const float2 v = __half22float2(*reinterpret_cast<const __half2*>(&h2));
      f[4 * i + 2 * j] = v.x;
      f[4 * i + 2 * j + 1] = v.y;
    }
  }
}

}  // namespace engine::cuda
