// test-deps: engine_internals
// stage_step_inputs (backend/cuda/step_inputs.h): the host-side plan of a CUDA step's attention, as the tile
// size of the prefill kernel in use asks (16 tokens for the f32 and one-warp kernels, 64 for the four-warp
// tensor-core kernel): every prompt slice cut into tiles that cover its tokens in order, none longer than the
// tile size, then every one-token slice in the decode list; no tiles without a prefill kernel or in a step of
// one-token slices; each token's slot and block-table start. Host code only: runs without a GPU (in a CUDA build).
#include <gtest/gtest.h>

#ifdef LLM_HAVE_CUDA
#include <cstdint>
#include <vector>

#include "backend/cuda/kernels.h"
#include "backend/cuda/step_inputs.h"

namespace ec = engine::cuda;

namespace {

// A step of `lens[i]` query tokens per sequence after `cached[i]` tokens already in the cache, block size 16,
// each sequence's blocks numbered apart from the others'.
engine::StepBatch make_step(const std::vector<int>& lens, const std::vector<int>& cached) {
  engine::StepBatch b;
  for (size_t i = 0; i < lens.size(); ++i) {
    engine::SeqSlice s;
    s.query_start = b.num_tokens();
    s.query_len = lens[i];
    s.context_len = cached[i] + lens[i];
    s.block_table_start = int(b.block_tables.size());
    s.num_blocks = (s.context_len + 15) / 16;
    s.want_logits = true;
    for (int k = 0; k < s.num_blocks; ++k) b.block_tables.push_back(int32_t(100 * (i + 1) + k));
    for (int j = 0; j < lens[i]; ++j) {
      b.tokens.push_back(7);
      b.positions.push_back(cached[i] + j);
    }
    b.seqs.push_back(s);
  }
  return b;
}

struct Staged {
  ec::StagedInputs st;
  std::vector<int32_t> host;
  ec::InputLayout layout;
  ec::InputLayout::Sections<int32_t> in() { return layout.at(host.data()); }
};

Staged stage(const engine::StepBatch& b, int tile_q) {
  Staged s;
  s.layout.cap = b.num_tokens() + 8;
  s.host.assign(s.layout.ints(int64_t(b.block_tables.size()) + 1), -7);
  s.st = ec::stage_step_inputs(b, b.num_tokens(), tile_q, 16, 4096, s.layout, s.host.data());
  return s;
}

TEST(StepInputs, PromptSlicesAreCutIntoTilesOfTheKernelsSizeAndDecodesListedAfter) {
  // A 130-token prompt, a decode, a 17-token chunk after 30 cached tokens, a 64-token prompt, another decode.
  const std::vector<int> lens{130, 1, 17, 64, 1}, cached{0, 40, 30, 0, 9};
  const engine::StepBatch b = make_step(lens, cached);
  for (int tile_q : {ec::prefill_tile_queries(0, true, 128), ec::prefill_tile_queries(1, true, 128),
                     ec::prefill_tile_queries(4, true, 128)}) {
    Staged s = stage(b, tile_q);
    auto in = s.in();
    int expect_tiles = 0;
    for (int L : lens)
      if (L > 1) expect_tiles += (L + tile_q - 1) / tile_q;
    ASSERT_EQ(s.st.n_tiles, expect_tiles) << "tile size " << tile_q;
    ASSERT_EQ(s.st.n_dec, 2);
    EXPECT_FALSE(s.st.one_token_rows);
    // The tiles, in order, cover each prompt slice's tokens exactly once, none past the tile size or its slice.
    int k = 0;
    for (const engine::SeqSlice& sl : b.seqs) {
      if (sl.query_len == 1) continue;
      int next = sl.query_start;
      while (next < sl.query_start + sl.query_len) {
        ASSERT_LT(k, s.st.n_tiles);
        const int32_t tile = in.lists[k++];
        const int t0 = tile >> ec::kPrefillTileShift, n = (tile & ((1 << ec::kPrefillTileShift) - 1)) + 1;
        EXPECT_EQ(t0, next);
        EXPECT_GE(n, 1);
        EXPECT_LE(n, tile_q);
        EXPECT_LE(t0 + n, sl.query_start + sl.query_len);
        for (int t = t0; t < t0 + n; ++t) EXPECT_EQ(in.bt_start[t], sl.block_table_start);  // one sequence
        next = t0 + n;
      }
    }
    EXPECT_EQ(in.lists[s.st.n_tiles], b.seqs[1].query_start);
    EXPECT_EQ(in.lists[s.st.n_tiles + 1], b.seqs[4].query_start);
    // Slots: the block of the position through the sequence's table, times 16, plus the offset.
    const engine::SeqSlice& c = b.seqs[2];
    for (int j = 0; j < c.query_len; ++j) {
      const int p = 30 + j;
      EXPECT_EQ(in.slots[c.query_start + j], b.block_tables[c.block_table_start + p / 16] * 16 + p % 16);
    }
  }
  // Without a prefill kernel (tile size 0) every token stays on the paged kernel: no lists at all.
  Staged none = stage(b, 0);
  EXPECT_EQ(none.st.n_tiles, 0);
  EXPECT_EQ(none.st.n_dec, 0);
}

TEST(StepInputs, StepsOfOneTokenSlicesHaveNoTiles) {
  const engine::StepBatch b = make_step({1, 1, 1}, {5, 17, 300});
  Staged s = stage(b, ec::prefill_tile_queries(4, true, 128));
  EXPECT_TRUE(s.st.one_token_rows);
  EXPECT_EQ(s.st.n_tiles, 0);
  EXPECT_EQ(s.st.n_dec, 0);
}

TEST(StepInputs, TileSizeFollowsTheKernelTheDispatchTakes) {
  EXPECT_EQ(ec::prefill_tile_queries(0, true, 128), ec::kPrefillTileQ);
  EXPECT_EQ(ec::prefill_tile_queries(1, true, 128), 16);
  EXPECT_EQ(ec::prefill_tile_queries(4, true, 64), 64);
  EXPECT_EQ(ec::prefill_tile_queries(4, true, 24), ec::kPrefillTileQ);   // no tensor-core kernel at head dim 24
  EXPECT_EQ(ec::prefill_tile_queries(4, false, 128), ec::kPrefillTileQ);  // float activations
  EXPECT_EQ(ec::prefill_tile_queries(2, true, 128), ec::kPrefillTileQ);   // no two-warp form
  // The packed tile holds every size the kernels take.
  EXPECT_LT(4 * 16 - 1, 1 << ec::kPrefillTileShift);
  const int32_t t = ec::prefill_tile(12345, 64);
  EXPECT_EQ(t >> ec::kPrefillTileShift, 12345);
  EXPECT_EQ((t & ((1 << ec::kPrefillTileShift) - 1)) + 1, 64);
}

}  // namespace

#else
TEST(StepInputs, SkippedWithoutCudaBuild) { GTEST_SKIP() << "built without LLM_ENABLE_CUDA"; }
#endif
