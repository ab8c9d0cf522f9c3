// test-deps: engine_internals
// The prompt-side attention: whole prompts and chunks after cached tokens, with decodes in the same step, through
// the per-token paged kernel, the tiled prefill kernel (attention_prefill.cu; bf16, float and fp8 caches) and
// its tensor-core form (attention_prefill_mma.cu), against a float64 reference (support/cuda_attention_check.h),
// as a whole and row by row. Outputs are poisoned (NaN) before each run. Skips when no CUDA device is present.
#include <gtest/gtest.h>

#ifdef LLM_HAVE_CUDA
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include "backend/cuda/kernels.h"
#include "support/cuda_attention_check.h"
#include "support/cuda_test_util.h"

namespace ec = engine::cuda;
using namespace cuda_test;

namespace {

// The prompt cases every tiled kernel runs. Whole prompts (lengths 1 .. 300, not multiples of a tile) with decodes
// among them (split 3).
AttnCase whole_prompts(int nh, int nkv, int hd, int bs) {
  return {nh, nkv, hd, bs, {1, 5, 17, 40, 33, 100, 9, 300}, {1, 5, 17, 1, 33, 100, 1, 300}, 3};
}
// Chunked prefill: chunks starting at positions > 0 (the earlier context already cached), one of them not
// tile-aligned and spanning several key tiles; a decode without splits.
AttnCase chunked_prompts(int nh, int nkv, int hd, int bs) {
  return {nh, nkv, hd, bs, {70, 300, 129, 2}, {37, 20, 1, 2}, 1};
}
// The mixed step's shape: MHA at 32 heads, 65-token prompts, decodes (split 3).
AttnCase mixed_step() { return {32, 32, 128, 16, {65, 65, 16, 200}, {65, 65, 16, 1}, 3}; }
// A long prompt: a chunk of 512 after 1,000 cached tokens, beside a decode (split 2).
AttnCase long_chunk() { return {8, 8, 128, 16, {1512, 3}, {512, 1}, 2}; }

TEST(CudaAttentionPrefill, PagedAttentionPrefillMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  // Prefill (whole prompts) and chunked prefill (a chunk after cached tokens) mixed with a decode.
  check_attention_both({32, 32, 128, 16, {37, 300, 5}, {37, 20, 1}, 1}, 20);
  check_attention_both({4, 2, 24, 16, {61, 1, 300}, {61, 1, 33}, 1, 8}, 21);
  check_attention_both({8, 4, 8, 5, {23, 9}, {23, 4}, 2}, 22);
}

TEST(CudaAttentionPrefill, PrefillTileAttentionMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  ASSERT_TRUE(ec::prefill_attention_supports_head_dim(64));
  ASSERT_TRUE(ec::prefill_attention_supports_head_dim(128));
  ASSERT_TRUE(ec::prefill_attention_supports_head_dim(24));
  ASSERT_FALSE(ec::prefill_attention_supports_head_dim(256));
  uint64_t seed = 300;
  // 64, 128: every thread busy; 24, 80: partial column groups and partial staging rounds.
  for (int hd : {64, 128, 24, 80}) {
    for (auto [nh, nkv] : {std::pair{8, 4}, std::pair{8, 1}, std::pair{4, 4}}) {
      for (int bs : {7, 16}) {
        const AttnCase whole = whole_prompts(nh, nkv, hd, bs), chunked = chunked_prompts(nh, nkv, hd, bs);
        check_attention<bf16>(whole, seed, true);
        check_attention<float>(whole, seed++, true);
        check_attention<bf16>(chunked, seed, true);
        check_attention<float>(chunked, seed++, true);
      }
    }
  }
  // Prefill only (an empty decode list), MHA at 32 heads; head dim 8 (staging by 32 of 128 threads).
  check_attention<bf16>({32, 32, 128, 16, {65, 65, 16}, {65, 65, 16}, 1}, seed, true);
  check_attention<float>({32, 32, 128, 16, {65, 65, 16}, {65, 65, 16}, 1}, seed++, true);
  check_attention<bf16>({4, 2, 8, 5, {23, 50}, {23, 20}, 1}, seed, true);
  check_attention<float>({4, 2, 8, 5, {23, 50}, {23, 20}, 1}, seed++, true);
  // An fp8 cache: the tiles dequantize while staging (against the reference on the dequantized values), the
  // decode rows through the paged kernel's fp8 path or version 2's.
  for (int hd : {128, 24, 8}) {
    check_attention<bf16>(whole_prompts(8, 4, hd, 16), seed++, true, AttnKernel::kPagedFp8);
    check_attention<bf16>(chunked_prompts(8, 2, hd, 7), seed++, true, AttnKernel::kPagedFp8);
  }
  check_attention<bf16>(mixed_step(), seed++, true, AttnKernel::kDecodeFp8);
}

// The tensor-core prefill kernel (attention_prefill_mma.cu), one warp a 16-token tile and four warps a 64-token
// tile, on the tiled kernel's cases: bf16 activations over a bf16 cache and an fp8 one, whole prompts with
// decodes among them and chunks after cached tokens (one starting inside a 64-token tile's span), MHA and GQA,
// block sizes that do and do not divide its 32-key tiles, every head dim it takes; the same row-by-row bounds.
TEST(CudaAttentionPrefill, PrefillTileMmaAttentionMatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  for (int hd : {16, 48, 64, 80, 128}) ASSERT_TRUE(ec::prefill_attention_mma_supports_head_dim(hd)) << hd;
  for (int hd : {8, 24, 136, 256}) ASSERT_FALSE(ec::prefill_attention_mma_supports_head_dim(hd)) << hd;
  EXPECT_EQ(ec::prefill_tile_queries(4, true, 128), 64);
  EXPECT_EQ(ec::prefill_tile_queries(1, true, 128), 16);
  EXPECT_EQ(ec::prefill_tile_queries(4, true, 24), ec::kPrefillTileQ);   // no kernel: the f32 kernel's tiles
  EXPECT_EQ(ec::prefill_tile_queries(4, false, 128), ec::kPrefillTileQ);  // float activations: likewise
  uint64_t seed = 400;
  for (int warps : {1, 4}) {
    for (int hd : {128, 64, 16, 80}) {
      for (auto [nh, nkv] : {std::pair{8, 4}, std::pair{8, 1}, std::pair{4, 4}}) {
        for (int bs : {7, 16}) {
          AttnCase whole = whole_prompts(nh, nkv, hd, bs), chunked = chunked_prompts(nh, nkv, hd, bs);
          whole.prefill_mma = chunked.prefill_mma = warps;
          for (AttnKernel k : {AttnKernel::kPaged, AttnKernel::kPagedFp8}) {
            check_attention<bf16>(whole, seed++, true, k);
            check_attention<bf16>(chunked, seed++, true, k);
          }
        }
      }
    }
    // The mixed step's shape and a long chunk, with the decode rows through version 2; head dim 48 (three
    // 16-dim value groups).
    AttnCase mixed = mixed_step(), longp = long_chunk();
    AttnCase odd{4, 2, 48, 5, {23, 50, 1}, {23, 20, 1}, 1};
    mixed.prefill_mma = longp.prefill_mma = odd.prefill_mma = warps;
    check_attention<bf16>(mixed, seed++, true, AttnKernel::kDecode);
    check_attention<bf16>(mixed, seed++, true, AttnKernel::kDecodeFp8);
    check_attention<bf16>(longp, seed++, true, AttnKernel::kDecode);
    check_attention<bf16>(longp, seed++, true, AttnKernel::kPagedFp8);
    check_attention<bf16>(odd, seed++, true);
    check_attention<bf16>(odd, seed++, true, AttnKernel::kPagedFp8);
  }
  // Head dims and warp counts it has no kernel for are refused by name when asked for directly.
  ec::AttentionArgs<bf16> a;
  a.hd = 24;
  const int32_t tile = 0;
  EXPECT_THROW(ec::paged_attention_prefill_mma(a, &tile, 1, 4, nullptr), std::invalid_argument);
  a.hd = 128;
  EXPECT_THROW(ec::paged_attention_prefill_mma(a, &tile, 1, 2, nullptr), std::invalid_argument);
}

// A row's sums do not depend on how many warps share its tile, nor on the other rows there: a key tile past a
// warp's rows adds exactly nothing, so one warp on 16-token tiles and four on 64-token tiles give the same bits
// (bf16 and fp8 caches, whole prompts and chunks, a long chunk).
TEST(CudaAttentionPrefill, PrefillTileMmaWarpsGiveTheSameBits) {
  SKIP_WITHOUT_DEVICE();
  uint64_t seed = 450;
  for (AttnKernel k : {AttnKernel::kPaged, AttnKernel::kPagedFp8}) {
    for (AttnCase c : {whole_prompts(8, 4, 128, 16), chunked_prompts(4, 4, 64, 7), long_chunk()}) {
      std::vector<bf16> one, four;
      c.prefill_mma = 1;
      check_attention<bf16>(c, seed, true, k, &one);
      c.prefill_mma = 4;
      check_attention<bf16>(c, seed, true, k, &four);
      ASSERT_EQ(one.size(), four.size());
      EXPECT_EQ(std::memcmp(one.data(), four.data(), one.size() * sizeof(bf16)), 0)
          << "head dim " << c.hd << " kernel " << int(k);
      ++seed;
    }
  }
}

}  // namespace

#else
TEST(CudaAttentionPrefill, SkippedWithoutCudaBuild) { GTEST_SKIP() << "built without LLM_ENABLE_CUDA"; }
#endif
