// RoPE on q and k, fused with the write of k and v into the paged KV cache: one pass over the
// step's qkv rows instead of two.
#include <cuda_bf16.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace engine::cuda {
namespace {

// One block per (token, head): blockIdx.y < nh rotates q head y in place; otherwise kv head y - nh:
// rotated k and plain v go to cache[(block, kv_head, offset, :)]. Pairs (i, i + hd/2) rotate by rope[pos, i]:
//   out[i] = a*cos - b*sin,  out[i + hd/2] = b*cos + a*sin   (a = x[i], b = x[i + hd/2])
// A block per head (not per token) keeps small decode batches from running on a handful of SMs.
__global__ void rope_kv_kernel(bf16* __restrict__ qkv, const int32_t* __restrict__ positions,
                               const int32_t* __restrict__ slots, const float2* __restrict__ rope,
                               bf16* __restrict__ k_cache, bf16* __restrict__ v_cache, int nh, int nkv,
                               int hd, int block_size) {
  const int t = blockIdx.x, head = blockIdx.y;
  const int half = hd / 2;
  bf16* row = qkv + t * static_cast<int64_t>(nh + 2 * nkv) * hd;
  const float2* cs = rope + static_cast<int64_t>(positions[t]) * half;
  if (head < nh) {
    bf16* x = row + head * hd;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
      const float a = __bfloat162float(x[i]), b = __bfloat162float(x[i + half]);
      const float2 c = cs[i];
      x[i] = __float2bfloat16(a * c.x - b * c.y);
      x[i + half] = __float2bfloat16(b * c.x + a * c.y);
    }
    return;
  }
  const int slot = slots[t];
  if (slot < 0) return;  // padding row
  const int h = head - nh;
  const bf16* k = row + static_cast<int64_t>(nh + h) * hd;
  const bf16* v = row + static_cast<int64_t>(nh + nkv + h) * hd;
  const int64_t at = ((static_cast<int64_t>(slot / block_size) * nkv + h) * block_size + slot % block_size) * hd;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float a = __bfloat162float(k[i]), b = __bfloat162float(k[i + half]);
    const float2 c = cs[i];
    k_cache[at + i] = __float2bfloat16(a * c.x - b * c.y);
    k_cache[at + i + half] = __float2bfloat16(b * c.x + a * c.y);
    v_cache[at + i] = v[i];
    v_cache[at + i + half] = v[i + half];
  }
}

}  // namespace

void rope_kv_write(bf16* qkv, const int32_t* positions, const int32_t* slots, const float2* rope,
                   bf16* k_cache, bf16* v_cache, int T, int nh, int nkv, int hd, int block_size,
                   cudaStream_t s) {
  if (T == 0) return;
  const int threads = std::min(128, (hd / 2 + 31) / 32 * 32);
  rope_kv_kernel<<<dim3(T, nh + nkv), threads, 0, s>>>(qkv, positions, slots, rope, k_cache, v_cache, nh, nkv, hd, block_size);
  LLM_CUDA_LAUNCHED(rope_kv_kernel);
}

}  // namespace engine::cuda
