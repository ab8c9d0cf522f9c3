// test-deps: engine_internals
// BlockManager: exact block counts at boundaries, loud failure on double free / foreign ids without touching
// the pool, and no leak or sharing after thousands of random allocate/append/free operations. With prefix
// caching: references counted per table, cached blocks found only for the same tokens and everything before
// them, kept after their last table frees them and evicted only when memory is needed (least recently freed
// first), and a seeded property test of 20,000 random operations with hits, evictions and preemptions that
// checks every count and every cached block's contents after each one.
#include "kv/block_manager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

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

// ---------------------------------------------------------------- prefix caching

// A sequence's tokens and the chained keys of its full blocks, as the scheduler computes them.
struct Tokens {
  std::vector<int32_t> ids;
  std::vector<BlockHash> hashes;
  int bs;
  Tokens(std::vector<int32_t> t, int block_size) : ids(std::move(t)), bs(block_size) { rehash(); }
  void rehash() {
    for (size_t i = hashes.size(); (i + 1) * bs <= ids.size(); ++i)
      hashes.push_back(hash_block(i == 0 ? kRootBlockHash : hashes[i - 1], std::span(ids).subspan(i * bs, bs)));
  }
  /// Full blocks [first, last).
  FullBlocks blocks(size_t first, size_t last) const {
    return {first, std::span(hashes).subspan(first, last - first), std::span(ids).subspan(first * bs, (last - first) * bs)};
  }
  /// The blocks a lookup may use: those before the last token.
  FullBlocks lookup() const { return blocks(0, (ids.size() - 1) / bs); }
};

std::vector<int32_t> iota_tokens(int n, int32_t from) {
  std::vector<int32_t> v(n);
  for (int i = 0; i < n; ++i) v[i] = from + i;
  return v;
}

TEST(PrefixCache, SharedBlocksAreCountedPerTableAndOutliveTheirLastTable) {
  BlockManager bm(10, 4, true);
  const Tokens a(iota_tokens(14, 100), 4);  // 3 full blocks + 2 tokens
  BlockTable ta;
  bm.allocate(ta, 14);
  bm.cache_full_blocks(ta, a.blocks(0, 3));
  EXPECT_EQ(bm.num_cached_blocks(), 3);
  EXPECT_EQ(bm.num_evictable_blocks(), 0);  // all held

  std::vector<int32_t> b_ids(a.ids.begin(), a.ids.begin() + 12);  // a's 3 full blocks, then 5 others
  for (int i = 0; i < 5; ++i) b_ids.push_back(900 + i);
  const Tokens b(b_ids, 4);
  const std::vector<int32_t> hit = bm.find_cached_prefix(b.lookup());
  EXPECT_EQ(hit, (std::vector<int32_t>{ta[0], ta[1], ta[2]}));
  ASSERT_TRUE(bm.can_allocate_with_prefix(hit, 17));
  BlockTable tb;
  bm.take_cached_prefix(tb, hit);
  bm.allocate(tb, 17);
  ASSERT_EQ(tb.size(), 5u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bm.ref_count(ta[i]), 2);
  EXPECT_EQ(bm.ref_count(ta[3]), 1);
  EXPECT_EQ(bm.num_used_blocks(), 6);  // 4 of a's, 2 of b's own

  bm.free(ta);
  EXPECT_EQ(bm.num_used_blocks(), 5);  // a's last block (never full) went to the free list; the shared 3 stay held
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bm.ref_count(tb[i]), 1);
  bm.free(tb);
  EXPECT_EQ(bm.num_free_blocks(), 10);
  EXPECT_EQ(bm.num_cached_blocks(), 3);  // kept, free, findable
  EXPECT_EQ(bm.num_evictable_blocks(), 3);
  EXPECT_EQ(bm.find_cached_prefix(a.lookup()), hit);
}

// vLLM's reset_prefix_cache: nothing is found afterwards; free cached blocks become plain free blocks, held
// ones stay with their tables and are freed as unregistered; the cache fills again afterwards.
TEST(PrefixCache, ResetForgetsEveryPrefixAndKeepsHeldBlocks) {
  BlockManager bm(10, 4, true);
  const Tokens a(iota_tokens(14, 100), 4), b(iota_tokens(9, 500), 4);
  BlockTable ta, tb;
  bm.allocate(ta, 14);
  bm.cache_full_blocks(ta, a.blocks(0, 3));
  bm.allocate(tb, 9);
  bm.cache_full_blocks(tb, b.blocks(0, 2));
  bm.free(tb);  // b's 2 cached blocks wait in the LRU; a's 3 are held
  ASSERT_EQ(bm.num_cached_blocks(), 5);
  ASSERT_EQ(bm.num_evictable_blocks(), 2);
  EXPECT_EQ(bm.reset_prefix_cache(), 5);
  EXPECT_EQ(bm.num_cached_blocks(), 0);
  EXPECT_EQ(bm.num_evictable_blocks(), 0);
  EXPECT_EQ(bm.num_free_blocks(), 6);  // unchanged: the LRU's blocks are free blocks now
  EXPECT_TRUE(bm.find_cached_prefix(a.lookup()).empty());
  EXPECT_TRUE(bm.find_cached_prefix(b.lookup()).empty());
  for (int32_t id : ta) {
    EXPECT_EQ(bm.ref_count(id), 1);
    EXPECT_FALSE(bm.is_cached(id));
  }
  bm.free(ta);
  EXPECT_EQ(bm.num_free_blocks(), 10);
  EXPECT_EQ(bm.num_evictable_blocks(), 0);  // freed as unregistered
  bm.allocate(ta, 14);  // the cache fills again
  bm.cache_full_blocks(ta, a.blocks(0, 3));
  EXPECT_EQ(bm.find_cached_prefix(a.lookup()).size(), 3u);
  EXPECT_EQ(BlockManager(4, 4, false).reset_prefix_cache(), 0);  // off: nothing to drop
}

TEST(PrefixCache, AHitNeedsTheSameTokensInTheBlockAndEveryBlockBefore) {
  BlockManager bm(8, 4, true);
  const Tokens a(iota_tokens(9, 10), 4);
  BlockTable ta;
  bm.allocate(ta, 9);
  bm.cache_full_blocks(ta, a.blocks(0, 2));
  std::vector<int32_t> other_first = a.ids;
  other_first[1] = 555;  // block 0 differs; block 1's tokens are a's
  EXPECT_TRUE(bm.find_cached_prefix(Tokens(other_first, 4).lookup()).empty());
  std::vector<int32_t> other_second = a.ids;
  other_second[6] = 555;  // block 0 is a's, block 1 differs
  EXPECT_EQ(bm.find_cached_prefix(Tokens(other_second, 4).lookup()), (std::vector<int32_t>{ta[0]}));
  // A key that matches with different tokens (a forged collision) is not a hit: the stored tokens are compared.
  Tokens forged = a;
  forged.ids[0] = 777;
  EXPECT_TRUE(bm.find_cached_prefix(forged.lookup()).empty());
  // The last token is never taken from the cache: a prompt of exactly 2 full blocks hits only the first.
  const Tokens exact(std::vector<int32_t>(a.ids.begin(), a.ids.begin() + 8), 4);
  EXPECT_EQ(bm.find_cached_prefix(exact.lookup()), (std::vector<int32_t>{ta[0]}));
}

TEST(PrefixCache, CachedBlocksAreEvictedOnlyWhenNeededLeastRecentlyFreedFirst) {
  BlockManager bm(6, 2, true);
  const Tokens a(iota_tokens(7, 10), 2), b(iota_tokens(5, 50), 2);
  BlockTable ta, tb;
  bm.allocate(ta, 6);
  bm.cache_full_blocks(ta, a.blocks(0, 3));
  bm.free(ta);  // LRU: a2 a1 a0 (the tail of a table goes first)
  bm.allocate(tb, 4);
  bm.cache_full_blocks(tb, b.blocks(0, 2));
  bm.free(tb);  // LRU: a2 a1 a0 b1 b0
  EXPECT_EQ(bm.num_cached_blocks(), 5);
  EXPECT_EQ(bm.num_free_blocks(), 6);
  auto hits = [&](const Tokens& t) { return bm.find_cached_prefix(t.lookup()).size(); };
  EXPECT_EQ(hits(a), 3u);
  EXPECT_EQ(hits(b), 2u);

  BlockTable c, d, e;
  bm.allocate(c, 2);  // the one unregistered free block: nothing evicted
  EXPECT_EQ(bm.num_cached_blocks(), 5);
  bm.allocate(d, 2);  // evicts a's last block
  EXPECT_EQ(bm.num_cached_blocks(), 4);
  EXPECT_EQ(hits(a), 2u);
  EXPECT_EQ(hits(b), 2u);
  bm.allocate(e, 4);  // a's other two
  EXPECT_EQ(hits(a), 0u);
  EXPECT_EQ(hits(b), 2u);
  EXPECT_EQ(bm.num_evictable_blocks(), 2);
  // A hit takes the block out of the LRU: the next eviction passes it over.
  BlockTable tb2, f;
  bm.take_cached_prefix(tb2, bm.find_cached_prefix(b.lookup()));
  EXPECT_EQ(bm.num_evictable_blocks(), 0);
  EXPECT_EQ(bm.num_free_blocks(), 0);
  EXPECT_FALSE(bm.can_allocate(f, 1));
  bm.free(c);
  bm.allocate(f, 2);
  EXPECT_EQ(hits(b), 2u);
}

TEST(PrefixCache, TakingCachedBlocksOutOfTheLruCountsAgainstTheFreePool) {
  BlockManager bm(4, 2, true);
  const Tokens a(iota_tokens(9, 10), 2);  // lookup: up to 4 blocks
  BlockTable ta, other;
  bm.allocate(ta, 4);
  bm.cache_full_blocks(ta, a.blocks(0, 2));
  // Held by `ta`, the prefix costs nothing: 8 tokens need 2 blocks past it, and 2 are free.
  std::vector<int32_t> hit = bm.find_cached_prefix(a.lookup());
  ASSERT_EQ(hit.size(), 2u);
  EXPECT_FALSE(bm.can_allocate(other, 8));
  EXPECT_TRUE(bm.can_allocate_with_prefix(hit, 8));
  // Freed into the LRU and the other 2 blocks taken: the LRU's 2 blocks count as free, but taking them as
  // the prefix leaves nothing for the 2 more that 8 tokens need.
  bm.free(ta);
  bm.allocate(other, 4);
  EXPECT_EQ(bm.num_free_blocks(), 2);
  EXPECT_TRUE(bm.can_allocate_with_prefix(hit, 4));
  EXPECT_FALSE(bm.can_allocate_with_prefix(hit, 5));
  BlockTable t;
  bm.take_cached_prefix(t, hit);
  EXPECT_EQ(bm.num_free_blocks(), 0);
  EXPECT_THROW(bm.allocate(t, 5), std::logic_error);
}

TEST(PrefixCache, ACopyOfACachedPrefixStaysUnregisteredAndIsFreedAsUsual) {
  BlockManager bm(8, 4, true);
  const Tokens a(iota_tokens(9, 10), 4);
  BlockTable first, second;  // both computed the same prompt (admitted in the same step)
  bm.allocate(first, 9);
  bm.allocate(second, 9);
  bm.cache_full_blocks(first, a.blocks(0, 2));
  bm.cache_full_blocks(second, a.blocks(0, 2));
  EXPECT_EQ(bm.num_cached_blocks(), 2);
  EXPECT_TRUE(bm.is_cached(first[0]));
  EXPECT_FALSE(bm.is_cached(second[0]));
  bm.cache_full_blocks(first, a.blocks(0, 2));  // offering the same blocks again changes nothing
  EXPECT_EQ(bm.num_cached_blocks(), 2);
  bm.free(second);
  EXPECT_EQ(bm.num_evictable_blocks(), 0);
  EXPECT_EQ(bm.find_cached_prefix(a.lookup()), (std::vector<int32_t>{first[0], first[1]}));
}

TEST(PrefixCache, MisuseIsALogicErrorThatChangesNothing) {
  BlockManager bm(8, 4, true);
  const Tokens a(iota_tokens(9, 10), 4);
  BlockTable ta, fresh;
  bm.allocate(ta, 9);
  EXPECT_THROW(bm.take_cached_prefix(fresh, std::vector<int32_t>{ta[0]}), std::logic_error);  // not registered
  bm.cache_full_blocks(ta, a.blocks(0, 2));
  EXPECT_THROW(bm.take_cached_prefix(ta, std::vector<int32_t>{ta[0]}), std::logic_error);  // table not empty
  EXPECT_THROW(bm.cache_full_blocks(fresh, a.blocks(0, 2)), std::logic_error);  // blocks past the table
  EXPECT_THROW(bm.find_cached_prefix(a.blocks(1, 2)), std::logic_error);        // not from block 0
  FullBlocks short_tokens = a.blocks(0, 2);
  short_tokens.tokens = short_tokens.tokens.first(5);
  EXPECT_THROW(bm.find_cached_prefix(short_tokens), std::logic_error);
  EXPECT_EQ(bm.ref_count(ta[0]), 1);
  EXPECT_EQ(bm.num_used_blocks(), 3);
  EXPECT_EQ(bm.num_cached_blocks(), 2);
}

TEST(PrefixCache, OffFindsNothingAndFreesToTheFreeList) {
  BlockManager bm(8, 4);
  const Tokens a(iota_tokens(9, 10), 4);
  BlockTable ta;
  bm.allocate(ta, 9);
  bm.cache_full_blocks(ta, a.blocks(0, 2));
  EXPECT_EQ(bm.num_cached_blocks(), 0);
  EXPECT_FALSE(bm.is_cached(ta[0]));
  EXPECT_TRUE(bm.find_cached_prefix(a.lookup()).empty());
  bm.free(ta);
  EXPECT_EQ(bm.num_evictable_blocks(), 0);
  EXPECT_EQ(bm.num_free_blocks(), 8);
}

// The property test. Sequences built from a few shared prefixes are admitted (taking their longest cached
// prefix), computed in random chunks and decodes, finished, or preempted (blocks freed, tokens kept, to be
// readmitted), in a pool small enough that cached blocks are evicted all the time. A shadow of the KV pool
// records which prefix's K/V each block holds; after every operation the test checks that reference counts
// are the number of tables holding each block (never negative), that the used/free/cached/evictable counts
// add up, that no write ever lands in a shared or cached block, and that every hit block holds exactly the
// K/V of the prefix it was found for.
TEST(PrefixCache, RandomOperationsWithHitsEvictionsAndPreemptionsKeepEveryInvariant) {
  constexpr int kBlocks = 32, kBs = 4, kSeqs = 10, kOps = 20000;
  constexpr BlockHash kPartial = ~BlockHash{0};  // a block holding K/V of a block not yet full
  BlockManager bm(kBlocks, kBs, true);
  std::mt19937_64 rng(20261201);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  std::vector<std::vector<int32_t>> prefixes;
  for (int p = 0; p < 4; ++p) prefixes.push_back(iota_tokens(4 * kBs + p, 1000 * (p + 1)));
  struct Seq {
    Tokens t{{}, kBs};
    BlockTable table;
    int computed = 0, cached = 0;  // tokens with K/V; leading blocks the cache has seen
    bool running = false;
  };
  auto fresh_tokens = [&] {
    std::vector<int32_t> ids = prefixes[uniform(0, int(prefixes.size()) - 1)];
    ids.resize(uniform(1, int(ids.size())));  // a prefix of the prefix: hits of every length
    for (int i = uniform(1, 10); i > 0; --i) ids.push_back(uniform(3, 40));
    return Tokens(ids, kBs);
  };
  std::vector<Seq> seqs(kSeqs);
  for (Seq& s : seqs) s.t = fresh_tokens();
  std::vector<BlockHash> shadow(kBlocks, kPartial);  // the prefix whose K/V each block holds

  int admitted = 0, hit_blocks = 0, readmit_hits = 0, steps = 0, finishes = 0, preemptions = 0, refused = 0;
  int64_t evictions = 0;
  std::vector<bool> preempted(kSeqs, false);

  // Computes (writes the K/V of) tokens [computed, computed + n) of s and offers its full blocks.
  auto compute = [&](Seq& s, int n) {
    for (int p = s.computed; p < s.computed + n; ++p) {
      const int32_t b = s.table[p / kBs];
      ASSERT_EQ(bm.ref_count(b), 1) << "a write into shared block " << b;
      ASSERT_FALSE(bm.is_cached(b)) << "a write into cached block " << b;
      shadow[b] = p % kBs == kBs - 1 ? s.t.hashes[p / kBs] : kPartial;
    }
    s.computed += n;
    const int full = s.computed / kBs;
    bm.cache_full_blocks(s.table, s.t.blocks(s.cached, full));
    s.cached = full;
  };
  auto release = [&](Seq& s) {
    bm.free(s.table);
    s.computed = s.cached = 0;
    s.running = false;
  };

  for (int op = 0; op < kOps; ++op) {
    const int i = uniform(0, kSeqs - 1);
    Seq& s = seqs[i];
    const int64_t cached_before = bm.num_cached_blocks();
    int64_t registered = 0;
    const int kind = uniform(0, 9);
    if (!s.running) {  // admit: the longest cached prefix, then a first chunk
      const std::vector<int32_t> hit = bm.find_cached_prefix(s.t.lookup());
      for (size_t k = 0; k < hit.size(); ++k)
        ASSERT_EQ(shadow[hit[k]], s.t.hashes[k]) << "op " << op << ": hit block " << hit[k] << " holds other K/V";
      const int start = int(hit.size()) * kBs;
      const int chunk = uniform(1, int(s.t.ids.size()) - start);
      if (!bm.can_allocate_with_prefix(hit, start + chunk)) {
        refused++;
      } else {
        bm.take_cached_prefix(s.table, hit);
        bm.allocate(s.table, start + chunk);
        s.computed = start;
        s.cached = int(hit.size());
        s.running = true;
        admitted++;
        hit_blocks += int(hit.size());
        if (preempted[i] && !hit.empty()) readmit_hits++;
        preempted[i] = false;
        const int64_t before = bm.num_cached_blocks();
        ASSERT_NO_FATAL_FAILURE(compute(s, chunk));
        registered = bm.num_cached_blocks() - before;
      }
    } else if (kind < 6) {  // a step: the rest of the prompt in a chunk, or a decode of one new token
      if (s.computed == int(s.t.ids.size())) {
        s.t.ids.push_back(uniform(3, 40));
        s.t.rehash();
      }
      const int n = uniform(1, int(s.t.ids.size()) - s.computed);
      if (!bm.can_allocate(s.table, s.computed + n)) {
        refused++;
      } else {
        bm.allocate(s.table, s.computed + n);
        const int64_t before = bm.num_cached_blocks();
        ASSERT_NO_FATAL_FAILURE(compute(s, n));
        registered = bm.num_cached_blocks() - before;
        steps++;
      }
    } else if (kind < 8) {  // finish: a new request takes this slot later
      release(s);
      s.t = fresh_tokens();
      finishes++;
    } else {  // preempt: blocks back to the pool (the cached ones to the LRU), tokens kept for readmission
      release(s);
      preempted[i] = true;
      preemptions++;
    }
    evictions += std::max<int64_t>(0, cached_before + registered - bm.num_cached_blocks());

    // Invariants after every operation.
    std::vector<int32_t> holders(kBlocks, 0);
    for (const Seq& q : seqs) {
      ASSERT_EQ(int64_t(q.table.size()), q.running ? bm.blocks_for(q.computed) : 0) << "op " << op;
      std::set<int32_t> distinct(q.table.begin(), q.table.end());
      ASSERT_EQ(distinct.size(), q.table.size()) << "op " << op << ": a block twice in one table";
      for (int32_t b : q.table) holders.at(b)++;
    }
    int64_t used = 0, cached = 0, evictable = 0;
    for (int32_t b = 0; b < kBlocks; ++b) {
      ASSERT_GE(bm.ref_count(b), 0) << "op " << op;
      ASSERT_EQ(bm.ref_count(b), holders[b]) << "op " << op << ": block " << b;
      used += holders[b] > 0;
      cached += bm.is_cached(b);
      evictable += bm.is_cached(b) && holders[b] == 0;
    }
    ASSERT_EQ(bm.num_used_blocks(), used) << "op " << op;
    ASSERT_EQ(bm.num_free_blocks(), kBlocks - used) << "op " << op;
    ASSERT_EQ(bm.num_cached_blocks(), cached) << "op " << op;
    ASSERT_EQ(bm.num_evictable_blocks(), evictable) << "op " << op;
  }
  // The run exercised what it claims to.
  std::printf("admitted %d hit_blocks %d readmit_hits %d steps %d finishes %d preemptions %d refused %d evictions %lld\n",
              admitted, hit_blocks, readmit_hits, steps, finishes, preemptions, refused, (long long)evictions);
  EXPECT_GT(admitted, 2000);
  EXPECT_GT(hit_blocks, 2000);
  EXPECT_GT(readmit_hits, 200);
  EXPECT_GT(evictions, 500);
  EXPECT_GT(preemptions, 1000);
  EXPECT_GT(finishes, 1000);
  EXPECT_GT(refused, 100);  // the pool really ran dry along the way

  // No leak: with every table freed the whole pool is free, and it hands out every id once.
  for (Seq& s : seqs) release(s);
  EXPECT_EQ(bm.num_free_blocks(), kBlocks);
  BlockTable all;
  bm.allocate(all, int64_t(kBlocks) * kBs);
  EXPECT_EQ(std::set<int32_t>(all.begin(), all.end()).size(), size_t(kBlocks));
  EXPECT_EQ(bm.num_cached_blocks(), 0);  // every cached block was evicted to make room
  for (int32_t b : all) EXPECT_EQ(bm.ref_count(b), 1);
}

}  // namespace
}  // namespace engine
