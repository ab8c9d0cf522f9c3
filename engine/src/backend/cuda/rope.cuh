// One RoPE pair's rotation (HF "half" pairing: dims i and i + hd/2 rotate by rope[pos, i] = (cos, sin)), spelled
// out with round-to-nearest intrinsics so that no compiler contracts it into FMAs differently in different
// kernels: rope_kv.cu's and decode_attention's fused path (AttentionArgs::qkv) give the same bits.
//   lo' = lo * cos - hi * sin,   hi' = hi * cos + lo * sin
#pragma once

namespace engine::cuda {

__device__ __forceinline__ float rope_lo(float lo, float hi, float c, float s) {
  return __fsub_rn(__fmul_rn(lo, c), __fmul_rn(hi, s));
}
__device__ __forceinline__ float rope_hi(float lo, float hi, float c, float s) {
  return __fadd_rn(__fmul_rn(hi, c), __fmul_rn(lo, s));
}

}  // namespace engine::cuda
