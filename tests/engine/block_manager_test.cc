// test-deps: engine_internals
// BlockManager: exact block counts at boundaries, loud failure on double free / foreign ids without touching
// the pool, and no leak or sharing after thousands of random allocate/append/free operations.
#include "kv/block_manager.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <stdexcept>

namespace engine {
namespace {

TEST(BlockManager, FreshPoolIsAllFree) {
  BlockManager bm(10, 16);
  EXPECT_EQ(bm.num_blocks(), 10);
  EXPECT_EQ(bm.num_free_blocks(), 10);
  EXPECT_EQ(bm.num_used_blocks(), 0);
  EXPECT_THROW(BlockManager(0, 16), std::invalid_argument);
  EXPECT_THROW(BlockManager(4, 0), std::invalid_argument);
}

TEST(BlockManager, AllocateCoversTokensExactly) {
  BlockManager bm(10, 16);
  BlockTable t;
  bm.allocate(t, 1);
  EXPECT_EQ(t.size(), 1u);
  bm.allocate(t, 16);  // still one block
  EXPECT_EQ(t.size(), 1u);
  bm.allocate(t, 17);
  EXPECT_EQ(t.size(), 2u);
  bm.allocate(t, 5);  // never shrinks
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(bm.num_used_blocks(), 2);
  bm.allocate(t, 100);  // a whole prompt chunk at once: ceil(100/16) = 7
  EXPECT_EQ(t.size(), 7u);
  EXPECT_EQ(bm.num_free_blocks(), 3);
}

TEST(BlockManager, AppendNeedsANewBlockOnlyAtABoundary) {
  BlockManager bm(2, 4);
  BlockTable t;
  bm.allocate(t, 3);
  EXPECT_TRUE(bm.can_append(t, 3));
  bm.append(t, 3);  // 4 tokens: same block
  EXPECT_EQ(t.size(), 1u);
  bm.append(t, 4);  // 5 tokens: second block
  EXPECT_EQ(t.size(), 2u);
  EXPECT_TRUE(bm.can_append(t, 7));   // 8 tokens fit in 2 blocks
  EXPECT_FALSE(bm.can_append(t, 8));  // 9 would need a third
  EXPECT_THROW(bm.append(t, 8), std::logic_error);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(bm.num_free_blocks(), 0);
}

TEST(BlockManager, CanAllocateMatchesTheFreeCount) {
  BlockManager bm(4, 8);
  BlockTable a, b;
  EXPECT_TRUE(bm.can_allocate(a, 32));
  EXPECT_FALSE(bm.can_allocate(a, 33));
  bm.allocate(a, 24);
  EXPECT_TRUE(bm.can_allocate(b, 8));
  EXPECT_FALSE(bm.can_allocate(b, 9));
  EXPECT_TRUE(bm.can_allocate(a, 32));  // a's own blocks count toward its total
  EXPECT_THROW(bm.allocate(b, 9), std::logic_error);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(bm.num_free_blocks(), 1);
}

TEST(BlockManager, FreeReturnsEveryBlockAndClearsTheTable) {
  BlockManager bm(8, 4);
  BlockTable t;
  bm.allocate(t, 20);
  EXPECT_EQ(bm.num_used_blocks(), 5);
  bm.free(t);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(bm.num_free_blocks(), 8);
  bm.free(t);  // an empty table frees nothing
  EXPECT_EQ(bm.num_free_blocks(), 8);
}

TEST(BlockManager, DoubleFreeThrowsAndLeavesThePoolIntact) {
  BlockManager bm(8, 4);
  BlockTable t, other;
  bm.allocate(t, 12);
  bm.allocate(other, 8);
  BlockTable copy = t;
  bm.free(t);
  EXPECT_EQ(bm.num_free_blocks(), 6);
  EXPECT_THROW(bm.free(copy), std::logic_error);
  EXPECT_EQ(bm.num_free_blocks(), 6);
  EXPECT_EQ(copy.size(), 3u);  // untouched
  // The free list still hands out each id once: take the whole pool and check for duplicates.
  BlockTable all;
  bm.allocate(all, 6 * 4);
  std::set<int32_t> ids(all.begin(), all.end());
  ids.insert(other.begin(), other.end());
  EXPECT_EQ(ids.size(), 8u);
  EXPECT_EQ(bm.num_free_blocks(), 0);
}

TEST(BlockManager, DuplicateOrForeignIdsAreRejectedWithoutChange) {
  BlockManager bm(4, 4);
  BlockTable t;
  bm.allocate(t, 8);
  BlockTable dup = {t[0], t[1], t[0]};
  EXPECT_THROW(bm.free(dup), std::logic_error);
  EXPECT_EQ(bm.num_used_blocks(), 2);
  BlockTable foreign = {t[0], 99};
  EXPECT_THROW(bm.free(foreign), std::logic_error);
  BlockTable negative = {-1};
  EXPECT_THROW(bm.free(negative), std::logic_error);
  EXPECT_EQ(bm.num_used_blocks(), 2);
  bm.free(t);  // the real owner can still free them
  EXPECT_EQ(bm.num_free_blocks(), 4);
}

// Thousands of random operations over many sequences: every table covers exactly its tokens, no block is in
// two tables, used == sum of table sizes, and freeing everything returns the whole pool.
TEST(BlockManager, RandomOperationsNeverLeakOrShare) {
  constexpr int kBlocks = 97, kBlockSize = 7, kSeqs = 24;
  BlockManager bm(kBlocks, kBlockSize);
  std::vector<BlockTable> tables(kSeqs);
  std::vector<int64_t> tokens(kSeqs, 0);
  std::mt19937 rng(1234);
  int allocs = 0, appends = 0, frees = 0, refused = 0;
  for (int op = 0; op < 20000; ++op) {
    int s = static_cast<int>(rng() % kSeqs);
    switch (rng() % 4) {
      case 0: {  // a prompt chunk
        int64_t want = tokens[s] + 1 + static_cast<int64_t>(rng() % 40);
        if (bm.can_allocate(tables[s], want)) {
          bm.allocate(tables[s], want);
          tokens[s] = want;
          allocs++;
        } else {
          EXPECT_THROW(bm.allocate(tables[s], want), std::logic_error);
          refused++;
        }
        break;
      }
      case 1:
      case 2:  // a decode step
        if (bm.can_append(tables[s], tokens[s])) {
          bm.append(tables[s], tokens[s]);
          tokens[s]++;
          appends++;
        } else {
          refused++;
        }
        break;
      case 3:
        bm.free(tables[s]);
        tokens[s] = 0;
        frees++;
        break;
    }
    int64_t used = 0;
    std::set<int32_t> seen;
    for (int i = 0; i < kSeqs; ++i) {
      ASSERT_EQ(static_cast<int64_t>(tables[i].size()), bm.blocks_for(tokens[i])) << "op " << op << " seq " << i;
      used += static_cast<int64_t>(tables[i].size());
      for (int32_t b : tables[i]) {
        ASSERT_GE(b, 0);
        ASSERT_LT(b, kBlocks);
        ASSERT_TRUE(seen.insert(b).second) << "block " << b << " in two tables at op " << op;
      }
    }
    ASSERT_EQ(used, bm.num_used_blocks()) << "op " << op;
  }
  EXPECT_GT(allocs, 1000);
  EXPECT_GT(appends, 1000);
  EXPECT_GT(frees, 1000);
  EXPECT_GT(refused, 100);  // the pool really ran dry along the way
  for (auto& t : tables) bm.free(t);
  EXPECT_EQ(bm.num_free_blocks(), kBlocks);
}

}  // namespace
}  // namespace engine
