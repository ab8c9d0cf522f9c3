// RoPE on q and k, fused with the write of k and v into the paged KV cache: one pass over the
// step's qkv rows instead of two.
#include <cuda_bf16.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace engine::cuda {
namespace {

// One block per token. Pairs (i, i + hd/2) of each q and k head rotate by the angle in rope[pos, i]:
//   out[i] = a*cos - b*sin,  out[i + hd/2] = b*cos + a*sin   (a = x[i], b = x[i + hd/2])
// q is rotated in place; rotated k and plain v go to cache[(block, kv_head, offset, :)].
__global__ void rope_kv_kernel(bf16* __restrict__ qkv, const int32_t* __restrict__ positions,
                               const int32_t* __restrict__ slots, const float2* __restrict__ rope,
                               bf16* __restrict__ k_cache, bf16* __restrict__ v_cache, int nh, int nkv,
                               int hd, int block_size) {
  const int t = blockIdx.x;
  const int half = hd / 2;
  const int64_t row_len = static_cast<int64_t>(nh + 2 * nkv) * hd;
  bf16* q = qkv + t * row_len;
  bf16* k = q + static_cast<int64_t>(nh) * hd;
  const bf16* v = k + static_cast<int64_t>(nkv) * hd;
  const float2* cs = rope + static_cast<int64_t>(positions[t]) * half;
  const int slot = slots[t];
  const int64_t blk = slot >= 0 ? slot / block_size : 0, off = slot >= 0 ? slot % block_size : 0;

  for (int p = threadIdx.x; p < nh * half; p += blockDim.x) {
    const int h = p / half, i = p % half;
    bf16* x = q + h * hd;
    const float a = __bfloat162float(x[i]), b = __bfloat162float(x[i + half]);
    const float2 c = cs[i];
    x[i] = __float2bfloat16(a * c.x - b * c.y);
    x[i + half] = __float2bfloat16(b * c.x + a * c.y);
  }
  if (slot < 0) return;
  for (int p = threadIdx.x; p < nkv * half; p += blockDim.x) {
    const int h = p / half, i = p % half;
    const bf16* x = k + h * hd;
    const float a = __bfloat162float(x[i]), b = __bfloat162float(x[i + half]);
    const float2 c = cs[i];
    bf16* dst = k_cache + ((blk * nkv + h) * block_size + off) * hd;
    dst[i] = __float2bfloat16(a * c.x - b * c.y);
    dst[i + half] = __float2bfloat16(b * c.x + a * c.y);
  }
  for (int p = threadIdx.x; p < nkv * hd; p += blockDim.x) {
    const int h = p / hd, d = p % hd;
    v_cache[((blk * nkv + h) * block_size + off) * hd + d] = v[p];
  }
}

}  // namespace

void rope_kv_write(bf16* qkv, const int32_t* positions, const int32_t* slots, const float2* rope,
                   bf16* k_cache, bf16* v_cache, int T, int nh, int nkv, int hd, int block_size,
                   cudaStream_t s) {
  if (T == 0) return;
  rope_kv_kernel<<<T, 256, 0, s>>>(qkv, positions, slots, rope, k_cache, v_cache, nh, nkv, hd, block_size);
  LLM_CUDA_LAUNCHED(rope_kv_kernel);
}

}  // namespace engine::cuda
