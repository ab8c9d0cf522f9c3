// test-deps: engine_internals
// The decode-side attention kernels (attention.cu's paged kernel, decode attention version 2; bf16, float and
// fp8 caches) against a float64 reference (support/cuda_attention_check.h): GQA, odd lengths and head dims,
// block tables with gaps, several context splits, token lists as a mixed step's decode rows; and the speed-only
// forms of version 2 (the in-kernel split merge, the shared-memory ring, the loads before the PDL wait, the
// fused RoPE) against the plain form's bits. Outputs are poisoned (NaN) before each run. Skips when no CUDA
// device is present.
#include <gtest/gtest.h>

#ifdef LLM_HAVE_CUDA
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cuda/kernels.h"
#include "support/cuda_attention_check.h"
#include "support/cuda_test_util.h"

namespace ec = engine::cuda;
using namespace cuda_test;

namespace {

TEST(CudaAttention, PagedAttentionDecodeMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  // Decode: one query token per sequence; odd context lengths, one longer than a 256-token tile.
  check_attention_both({32, 32, 128, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, 1}, 10);
  check_attention_both({32, 32, 128, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, 5}, 11);
  check_attention_both({4, 2, 24, 16, {3, 45, 290}, {1, 1, 1}, 1}, 12);
  check_attention_both({4, 2, 24, 16, {3, 45, 290}, {1, 1, 1}, 16, 2 * 2 * 24}, 13);  // q inside a qkv row
  check_attention_both({8, 4, 8, 5, {7, 64, 129}, {1, 1, 1}, 3}, 14);
  check_attention_both({8, 1, 64, 7, {100, 33}, {1, 1}, 2}, 15);
}

// Version 2 of the decode kernel (attention_decode.cu) on the decode cases of the paged kernel, in both
// storage types, with splits and token lists (a mixed step's decode rows), head dims 64 and 128; then over an
// fp8 cache against the reference on the dequantized values (the kernel's own error: bf16 rounding only).
TEST(CudaAttention, DecodeAttentionV2MatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  ASSERT_TRUE(ec::decode_attention_supports_head_dim(128));
  ASSERT_TRUE(ec::decode_attention_supports_head_dim(64));
  ASSERT_FALSE(ec::decode_attention_supports_head_dim(24));
  uint64_t seed = 500;
  for (AttnKernel k : {AttnKernel::kDecode, AttnKernel::kDecodeFp8}) {
    for (int splits : {1, 3, 16}) {
      // MHA at 32 heads; odd contexts, one past 2 x 256 tokens, one of a single token (empty splits). Four
      // and eight tokens in flight per lane group (the default and deterministic modes' values).
      const int r = splits == 3 ? 8 : 4;
      const AttnCase mha{32, 32, 128, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, splits, 0, r};
      const AttnCase gqa{8, 2, 64, 7, {100, 33, 1000, 5}, {1, 1, 1, 1}, splits, 0, 12 - r};
      check_attention<bf16>(mha, seed, false, k);
      check_attention<bf16>(gqa, seed + 1, false, k);
      if (k == AttnKernel::kDecodeFp8) {  // the narrow fp8 loads: 8 bytes a lane, bf16's lanes per token
        AttnCase narrow_mha = mha, narrow_gqa = gqa;
        narrow_mha.fp8_lane_bytes = narrow_gqa.fp8_lane_bytes = 8;
        check_attention<bf16>(narrow_mha, seed, false, k);
        check_attention<bf16>(narrow_gqa, seed + 1, false, k);
      }
      if (k == AttnKernel::kDecode) {
        check_attention<float>(mha, seed, false, k);
        check_attention<float>(gqa, seed + 1, false, k);
      }
      seed += 2;
    }
    // As the backend runs a mixed step: prefill tiles then the decode rows through version 2 (bf16 cache).
    if (k == AttnKernel::kDecode) {
      check_attention<bf16>({8, 4, 128, 16, {37, 300, 1, 90}, {37, 20, 1, 1}, 3}, seed, true, k);
      check_attention<float>({8, 4, 64, 16, {37, 300, 1, 90}, {37, 20, 1, 1}, 3}, seed++, true, k);
    }
  }
  // A q row inside a wider qkv row (q_stride > nh*hd), with an fp8 cache.
  check_attention<bf16>({4, 2, 64, 16, {3, 45, 290}, {1, 1, 1}, 2, 2 * 2 * 64}, seed, false, AttnKernel::kDecodeFp8);
}

// The last split block's merge (AttentionArgs::split_count) against the combine kernel: the same sums in the
// same order, so the same bits, for both decode kernels and the fp8 cache, with empty splits (a one-token
// context at 16 splits) and a token list (a mixed step's decode rows); the counters end at 0 (checked inside),
// and so does a second launch over the same counters. Prefetching a range into L2 changes no bit either.
TEST(CudaAttention, SplitMergeInKernelGivesTheCombineKernelsBits) {
  SKIP_WITHOUT_DEVICE();
  uint64_t seed = 900;
  for (AttnKernel k : {AttnKernel::kPaged, AttnKernel::kDecode, AttnKernel::kDecodeFp8, AttnKernel::kPagedFp8}) {
    for (int splits : {2, 3, 16}) {
      AttnCase c{32, 32, 128, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, splits};
      std::vector<bf16> combined, merged, prefetched;
      check_attention<bf16>(c, seed, false, k, &combined);
      c.merge_in_kernel = true;
      check_attention<bf16>(c, seed, false, k, &merged);
      c.l2_prefetch = true;
      check_attention<bf16>(c, seed, false, k, &prefetched);
      ASSERT_EQ(combined.size(), merged.size());
      EXPECT_EQ(std::memcmp(combined.data(), merged.data(), combined.size() * sizeof(bf16)), 0)
          << "kernel " << int(k) << " splits " << splits;
      EXPECT_EQ(std::memcmp(combined.data(), prefetched.data(), combined.size() * sizeof(bf16)), 0)
          << "kernel " << int(k) << " splits " << splits << " with the L2 prefetch";
      ++seed;
    }
  }
  // float activations, and a mixed step's decode list after the prefill tiles.
  AttnCase c{8, 4, 64, 16, {37, 300, 1, 90}, {37, 20, 1, 1}, 3};
  std::vector<float> combined, merged;
  check_attention<float>(c, seed, true, AttnKernel::kDecode, &combined);
  c.merge_in_kernel = true;
  check_attention<float>(c, seed, true, AttnKernel::kDecode, &merged);
  ASSERT_EQ(combined.size(), merged.size());
  EXPECT_EQ(std::memcmp(combined.data(), merged.data(), combined.size() * sizeof(float)), 0) << "float, tiled";
}

// decode_attention's loads through a ring of shared-memory stages (cp.async, AttentionArgs::ring_stages) take
// the same tokens in the same order as its loads into registers: the same bits, for the bf16 and fp8 caches, at
// 4 and 8 warps, 4 and 8 tokens in flight, with splits (empty ones included), merged in the kernel or not, over
// a token list after prefill tiles; each result is also checked against float64 inside check_attention. The
// caches without 16-byte lane loads (float, fp8 at 8 bytes a lane) refuse a ring with an error, and so does a
// ring larger than a block's shared memory (the first run found the opt-in missing at exactly 48 KB).
TEST(CudaAttention, DecodeAttentionRingGivesTheRegisterPathsBits) {
  SKIP_WITHOUT_DEVICE();
  int dev = 0, smem_optin = 0;
  CK(cudaGetDevice(&dev));
  CK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  // The ring's bytes a block as attention_decode.cu lays them out (16-byte K and V slices of every lane, per
  // token in flight and stage, then the fp8 scales of each lane group), plus its static merge arrays.
  auto ring_bytes = [](const AttnCase& c, AttnKernel k) {
    const int lanes_per_token = c.hd / (reads_fp8(k) ? 16 : 8), groups = c.warps * (32 / lanes_per_token);
    return size_t(c.ring_stages) * c.tokens_in_flight * 2 *
               (size_t(c.warps) * 32 * 16 + (reads_fp8(k) ? groups * sizeof(float) : 0)) +
           2 * groups * sizeof(float);
  };
  uint64_t seed = 1300;
  for (AttnKernel k : {AttnKernel::kDecode, AttnKernel::kDecodeFp8}) {
    for (int splits : {1, 3, 16}) {
      for (int warps : {4, 8}) {
        const int r = splits == 3 ? 8 : 4;
        AttnCase mha{32, 32, 128, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, splits, 0, r};
        AttnCase gqa{8, 2, 64, 7, {100, 33, 1000, 5}, {1, 1, 1, 1}, splits, 0, 12 - r};
        mha.warps = gqa.warps = warps;
        mha.merge_in_kernel = splits == 16;
        for (AttnCase* c : {&mha, &gqa}) {
          std::vector<bf16> regs, ring;
          c->ring_stages = 0;
          check_attention<bf16>(*c, seed, false, k, &regs);
          for (int st : {2, 3, 4}) {
            c->ring_stages = st;
            if (ring_bytes(*c, k) > size_t(smem_optin)) {  // 8 warps x 8 tokens x 4 stages: 256 KB and more
              EXPECT_THROW(check_attention<bf16>(*c, seed, false, k, &ring), std::invalid_argument)
                  << "a ring past the device's shared memory: " << ring_bytes(*c, k) << " bytes";
              continue;
            }
            check_attention<bf16>(*c, seed, false, k, &ring);
            ASSERT_EQ(regs.size(), ring.size());
            EXPECT_EQ(std::memcmp(regs.data(), ring.data(), regs.size() * sizeof(bf16)), 0)
                << "kernel " << int(k) << " hd " << c->hd << " splits " << splits << " warps " << warps << " tokens "
                << c->tokens_in_flight << " ring " << st;
          }
          ++seed;
        }
      }
    }
  }
  // A mixed step's decode rows after the prefill tiles (bf16 cache).
  AttnCase c{8, 4, 128, 16, {37, 300, 1, 90}, {37, 20, 1, 1}, 3};
  std::vector<bf16> regs, ring;
  check_attention<bf16>(c, seed, true, AttnKernel::kDecode, &regs);
  c.ring_stages = 3;
  check_attention<bf16>(c, seed, true, AttnKernel::kDecode, &ring);
  ASSERT_EQ(regs.size(), ring.size());
  EXPECT_EQ(std::memcmp(regs.data(), ring.data(), regs.size() * sizeof(bf16)), 0) << "tiled";
  AttnCase f32{4, 2, 64, 16, {5, 40}, {1, 1}, 1};
  f32.ring_stages = 2;
  EXPECT_THROW(check_attention<float>(f32, seed, false, AttnKernel::kDecode), std::invalid_argument);
  AttnCase narrow{4, 2, 64, 16, {5, 40}, {1, 1}, 1};
  narrow.ring_stages = 2;
  narrow.fp8_lane_bytes = 8;
  EXPECT_THROW(check_attention<bf16>(narrow, seed, false, AttnKernel::kDecodeFp8), std::invalid_argument);
}

// The decode cases the load-path tests share: MHA at head dim 128, and GQA 4:1 at head dim 64 with block size 7,
// whose splits end at a row's new token (lengths 1, 5, 33, 100, 1000); merged in the kernel at 16 splits.
std::vector<AttnCase> new_token_cases(int splits) {
  AttnCase mha{32, 32, 128, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, splits};
  AttnCase gqa{8, 2, 64, 7, {100, 33, 1000, 5, 1}, {1, 1, 1, 1, 1}, splits, 0, 8};
  mha.merge_in_kernel = splits == 16;
  return {mha, gqa};
}

// check_attention (against float64) of c, then of c after `change`: the two outputs must be the same bits.
template <typename E, typename F>
void expect_same_bits(AttnCase c, uint64_t seed, AttnKernel k, bool tiled, F change, const std::string& what) {
  std::vector<E> before, after;
  check_attention<E>(c, seed, tiled, k, &before);
  change(c);
  check_attention<E>(c, seed, tiled, k, &after);
  ASSERT_EQ(before.size(), after.size());
  EXPECT_EQ(std::memcmp(before.data(), after.data(), before.size() * sizeof(E)), 0) << what;
}

// decode_attention with AttentionArgs::kv_before_wait issues the K/V loads of its first iterations before it
// waits on the kernel before it, here rope_kv_write writing each row's new K/V (NaN on the device until then)
// and q, launched just before it on one stream as in the backend: the same bits as loading after the wait and
// float64's result on the cache as left, in both load paths, bf16 and fp8 caches, with splits that end at a
// row's new token, merged in the kernel or not, and over a mixed step's decode list after prefill tiles whose
// rows the same kernel writes.
TEST(CudaAttention, DecodeAttentionLoadsBeforeTheWaitGiveTheSameBits) {
  SKIP_WITHOUT_DEVICE();
  uint64_t seed = 1700;
  auto early = [](AttnCase& c) { c.kv_before_wait = true; };
  for (AttnKernel k : {AttnKernel::kDecode, AttnKernel::kDecodeFp8}) {
    for (int ring : {0, 3}) {
      for (int splits : {1, 3, 16}) {
        for (AttnCase c : new_token_cases(splits)) {
          c.ring_stages = ring;
          c.kv_by_kernel = true;
          expect_same_bits<bf16>(c, seed++, k, false, early,
                                 "kernel " + std::to_string(int(k)) + " hd " + std::to_string(c.hd) + " splits " +
                                     std::to_string(splits) + " ring " + std::to_string(ring));
        }
      }
    }
  }
  AttnCase c{8, 4, 128, 16, {37, 300, 1, 90}, {37, 20, 1, 1}, 3};
  c.kv_by_kernel = true;
  for (int ring : {0, 3}) {
    c.ring_stages = ring;
    expect_same_bits<bf16>(c, seed, AttnKernel::kDecode, true, early, "tiled, ring " + std::to_string(ring));
  }
  // float activations (register path only).
  AttnCase f32{8, 2, 64, 7, {100, 33, 1000, 5}, {1, 1, 1, 1}, 3};
  f32.kv_by_kernel = f32.kv_before_wait = true;
  check_attention<float>(f32, seed, false, AttnKernel::kDecode);
}

// decode_attention with the RoPE and K/V write fused in (AttentionArgs::qkv): q rotated from the QKV GEMM's f32
// row and each row's new K/V written by the split that holds it, against rope_kv_write followed by the
// attention on the same inputs and a random rotation table: the same bits, and float64's result (q rotated in
// float64, the cache as left); both load paths, with and without the early loads, MHA and GQA (every block of a
// kv head's group writes the same row), splits ending at a new token, float activations too. An fp8 cache
// refuses it with an error.
TEST(CudaAttention, DecodeAttentionFusedRopeGivesRopeKvWritesBits) {
  SKIP_WITHOUT_DEVICE();
  uint64_t seed = 1900;
  auto fuse = [](AttnCase& c) { c.fused_rope = true; };
  for (int ring : {0, 3}) {
    for (bool early : {false, true}) {
      for (int splits : {1, 3, 16}) {
        for (AttnCase c : new_token_cases(splits)) {
          c.ring_stages = ring;
          c.kv_by_kernel = c.random_rope = true;
          c.kv_before_wait = early;
          expect_same_bits<bf16>(c, seed++, AttnKernel::kDecode, false, fuse,
                                 "hd " + std::to_string(c.hd) + " splits " + std::to_string(splits) + " ring " +
                                     std::to_string(ring) + " early " + std::to_string(early));
        }
      }
    }
  }
  AttnCase f32{8, 2, 64, 7, {100, 33, 1000, 5}, {1, 1, 1, 1}, 3};
  f32.kv_by_kernel = f32.random_rope = true;
  expect_same_bits<float>(f32, seed, AttnKernel::kDecode, false, fuse, "float");
  AttnCase fp8{8, 2, 64, 7, {100, 33}, {1, 1}, 1};
  fp8.kv_by_kernel = fp8.fused_rope = true;
  EXPECT_THROW(check_attention<bf16>(fp8, seed, false, AttnKernel::kDecodeFp8), std::invalid_argument);
}

// The paged kernel over an fp8 cache: the head dims version 2 has no kernel for (tiny-llama's 24,
// stories260K's 8) and the ones it has, decode rows with splits and whole prompts (prompts take it with
// LLM_CUDA_PREFILL_KERNEL=0 and at head dim 256), against the reference on the dequantized values.
TEST(CudaAttention, PagedAttentionFp8MatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  uint64_t seed = 700;
  for (int hd : {8, 24, 64, 128, 256}) {
    for (int splits : {1, 3}) {
      check_attention<bf16>({8, 2, hd, 16, {1, 17, 300, 531}, {1, 1, 1, 1}, splits}, seed++, false,
                            AttnKernel::kPagedFp8);
    }
    check_attention<bf16>({4, 4, hd, 7, {37, 90, 1}, {37, 20, 1}, 1}, seed++, false, AttnKernel::kPagedFp8);
  }
  // A q row inside a wider qkv row, GQA 4:1.
  check_attention<bf16>({4, 1, 24, 16, {3, 45, 290}, {1, 1, 1}, 2, 2 * 24}, seed, false, AttnKernel::kPagedFp8);
  // Float activations cannot read an fp8 cache: a clear error, not garbage.
  EXPECT_THROW(check_attention<float>({4, 2, 24, 16, {5}, {1}, 1}, seed, false, AttnKernel::kPagedFp8),
               std::invalid_argument);
}

}  // namespace

#else
TEST(CudaAttention, SkippedWithoutCudaBuild) { GTEST_SKIP() << "built without LLM_ENABLE_CUDA"; }
#endif
