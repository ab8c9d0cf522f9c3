// RoPE on q and k, fused with the write of k and v into the paged KV cache: one pass over the step's f32
// qkv rows (the QKV GEMM's output). Reading f32 and rounding to the storage type E only after the rotation
// means each stored q/k/v value is rounded once (rounding before RoPE as well cost accuracy for nothing).
#include <cuda_bf16.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/vec8.cuh"

namespace engine::cuda {
namespace {

// One block per (token, head): blockIdx.y < nh rotates q head y into q_out[t, y*hd ...]; otherwise kv head
// y - nh: rotated k and plain v go to cache[(block, kv_head, offset, :)]. Pairs (i, i + hd/2) rotate by
// rope[pos, i]:
//   out[i] = a*cos - b*sin,  out[i + hd/2] = b*cos + a*sin   (a = x[i], b = x[i + hd/2])
// A block per head (not per token) keeps small decode batches from running on a handful of SMs.
//   qkv: f32 [T, (nh + 2*nkv)*hd];  q_out: E [T, nh*hd];  caches: E [num_blocks, nkv, block_size, hd]
template <typename E>
__global__ void rope_kv_kernel(const float* __restrict__ qkv, const int32_t* __restrict__ positions,
                               const int32_t* __restrict__ slots, const float2* __restrict__ rope,
                               E* __restrict__ q_out, E* __restrict__ k_cache, E* __restrict__ v_cache, int nh,
                               int nkv, int hd, int block_size) {
  const int t = blockIdx.x, head = blockIdx.y;
  const int half = hd / 2;
  const float* row = qkv + t * static_cast<int64_t>(nh + 2 * nkv) * hd;
  const float2* cs = rope + static_cast<int64_t>(positions[t]) * half;
  if (head < nh) {
    const float* x = row + head * hd;
    E* y = q_out + (static_cast<int64_t>(t) * nh + head) * hd;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
      const float a = x[i], b = x[i + half];
      const float2 c = cs[i];
      y[i] = from_f32<E>(a * c.x - b * c.y);
      y[i + half] = from_f32<E>(b * c.x + a * c.y);
    }
    return;
  }
  const int slot = slots[t];
  if (slot < 0) return;  // padding row
  const int h = head - nh;
  const float* k = row + static_cast<int64_t>(nh + h) * hd;
  const float* v = row + static_cast<int64_t>(nh + nkv + h) * hd;
  const int64_t at = ((static_cast<int64_t>(slot / block_size) * nkv + h) * block_size + slot % block_size) * hd;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float a = k[i], b = k[i + half];
    const float2 c = cs[i];
    k_cache[at + i] = from_f32<E>(a * c.x - b * c.y);
    k_cache[at + i + half] = from_f32<E>(b * c.x + a * c.y);
    v_cache[at + i] = from_f32<E>(v[i]);
    v_cache[at + i + half] = from_f32<E>(v[i + half]);
  }
}

}  // namespace

template <typename E>
void rope_kv_write(const float* qkv, const int32_t* positions, const int32_t* slots, const float2* rope, E* q_out,
                   E* k_cache, E* v_cache, int T, int nh, int nkv, int hd, int block_size, cudaStream_t s) {
  if (T == 0) return;
  const int threads = std::min(128, (hd / 2 + 31) / 32 * 32);
  rope_kv_kernel<E><<<dim3(T, nh + nkv), threads, 0, s>>>(qkv, positions, slots, rope, q_out, k_cache, v_cache, nh,
                                                          nkv, hd, block_size);
  LLM_CUDA_LAUNCHED(rope_kv_kernel);
}

template void rope_kv_write<bf16>(const float*, const int32_t*, const int32_t*, const float2*, bf16*, bf16*, bf16*,
                                  int, int, int, int, int, cudaStream_t);
template void rope_kv_write<float>(const float*, const int32_t*, const int32_t*, const float2*, float*, float*,
                                   float*, int, int, int, int, int, cudaStream_t);

}  // namespace engine::cuda
