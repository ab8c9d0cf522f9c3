// test-deps: engine_internals
// Scheduler without a model: a deterministic stand-in "model" (the next token is a hash of all tokens before
// it, as a greedy LM's would be) drives schedule() -> postprocess() so batch caps, token budgets, chunked
// prefill, FCFS order and preemption-by-recompute can be checked step by step. Also StopMatcher.
#include "scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "scheduler/stop_matcher.h"

namespace engine {
namespace {

std::unique_ptr<Sequence> make_seq(uint64_t id, int prompt_len, int max_new) {
  auto s = std::make_unique<Sequence>();
  s->id = id;
  s->arrival = id;
  for (int i = 0; i < prompt_len; ++i) s->prompt_tokens.push_back(static_cast<int32_t>(3 + (id * 31 + i) % 200));
  s->sampling.max_new_tokens = max_new;
  s->sampling.ignore_eos = true;
  return s;
}

// The token a deterministic "greedy model" picks after `s`'s known tokens (never eos = 2).
int32_t next_token(const Sequence& s) {
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < s.num_tokens(); ++i) h = (h ^ static_cast<uint64_t>(s.token_at(i))) * 1099511628211ull;
  return static_cast<int32_t>(3 + h % 500);
}

struct Trace {
  std::map<uint64_t, std::vector<int32_t>> outputs;  // finished sequences' tokens
  std::map<uint64_t, int> emitted;                   // tokens produced (want_logits rows) per sequence
  std::map<uint64_t, int> preemptions;
  int steps = 0;
};

// A key of tokens [0, p] of s: what the K/V at position p are a function of.
std::vector<uint64_t> prefix_keys(const Sequence& s, int n) {
  std::vector<uint64_t> keys(n);
  uint64_t h = 1469598103934665603ull;
  for (int p = 0; p < n; ++p) keys[p] = h = (h ^ static_cast<uint64_t>(s.token_at(p))) * 1099511628211ull + p;
  return keys;
}

// Runs the scheduler to completion, checking the invariants of every batch. A shadow of the KV pool stands in
// for the backend: each scheduled token "writes" its prefix key into its slot (block table[p / block_size]),
// which must be a block the sequence holds alone and that is not in the prefix cache, and a sequence that
// yields a token "reads" its whole context through its block table, which must hold its own prefix keys.
Trace run_to_completion(Scheduler& sched) {
  Trace tr;
  const SchedulerConfig& cfg = sched.config();
  const BlockManager& bm = sched.block_manager();
  std::vector<uint64_t> kv(static_cast<size_t>(cfg.num_kv_blocks * cfg.block_size), 0);
  auto slot = [&](const Sequence& s, int p) {
    return static_cast<size_t>(s.block_table[p / cfg.block_size]) * cfg.block_size + p % cfg.block_size;
  };
  while (sched.has_unfinished()) {
    ScheduledBatch b = sched.schedule();
    EXPECT_FALSE(b.empty()) << "stalled at step " << tr.steps;
    if (b.empty()) break;
    EXPECT_LE(b.num_tokens, cfg.max_num_batched_tokens);
    EXPECT_LE(sched.num_running(), cfg.max_num_seqs);
    std::set<int32_t> blocks;
    std::vector<int32_t> toks(b.seqs.size(), -1);
    for (size_t i = 0; i < b.seqs.size(); ++i) {
      const ScheduledSeq& e = b.seqs[i];
      const Sequence& s = *e.seq;
      EXPECT_EQ(s.state, SeqState::kRunning);
      EXPECT_GE(e.num_tokens, 1);
      EXPECT_LE(s.num_computed_tokens + e.num_tokens, s.num_tokens());
      EXPECT_EQ(e.want_logits, s.num_computed_tokens + e.num_tokens == s.num_tokens());
      EXPECT_GE(static_cast<int64_t>(s.block_table.size()),
                sched.block_manager().blocks_for(s.num_computed_tokens + e.num_tokens));
      blocks.insert(s.block_table.begin(), s.block_table.end());
      const int end = s.num_computed_tokens + e.num_tokens;
      const std::vector<uint64_t> keys = prefix_keys(s, end);
      for (int p = s.num_computed_tokens; p < end; ++p) {
        const int32_t blk = s.block_table[p / cfg.block_size];
        EXPECT_EQ(bm.ref_count(blk), 1) << "sequence " << s.id << " writes position " << p << " into a shared block";
        EXPECT_FALSE(bm.is_cached(blk)) << "sequence " << s.id << " writes position " << p << " into a cached block";
        kv[slot(s, p)] = keys[p];
      }
      if (e.want_logits) {
        int wrong = 0;
        // 0: written before this run began (a test that stepped the scheduler itself first)
        for (int p = 0; p < end; ++p) wrong += kv[slot(s, p)] != 0 && kv[slot(s, p)] != keys[p];
        EXPECT_EQ(wrong, 0) << "sequence " << s.id << " reads wrong K/V at " << wrong << " of " << end << " positions";
      }
      if (e.want_logits) {
        toks[i] = next_token(s);
        tr.emitted[s.id]++;
      }
    }
    // Every held block belongs to a scheduled sequence here (running ones are all scheduled when the budget allows).
    if (sched.num_running() == static_cast<int>(b.seqs.size())) {
      EXPECT_EQ(static_cast<int64_t>(blocks.size()), bm.num_used_blocks());
    }
    sched.postprocess(b, toks);
    for (auto& f : sched.take_finished()) {
      tr.outputs[f->id] = f->output_tokens;
      tr.preemptions[f->id] = f->num_preemptions;
      EXPECT_TRUE(f->block_table.empty());
    }
    if (++tr.steps > 100000) break;
  }
  EXPECT_EQ(sched.block_manager().num_used_blocks(), 0);
  return tr;
}

SchedulerConfig config(int max_seqs, int max_tokens, bool chunked, int64_t blocks, int block_size) {
  SchedulerConfig c;
  c.max_num_seqs = max_seqs;
  c.max_num_batched_tokens = max_tokens;
  c.enable_chunked_prefill = chunked;
  c.num_kv_blocks = blocks;
  c.block_size = block_size;
  return c;
}

TEST(Scheduler, CapsTheBatchAtMaxNumSeqs) {
  Scheduler sched(config(4, 1000, true, 1000, 16));
  for (uint64_t id = 1; id <= 10; ++id) sched.add(make_seq(id, 5, 3));
  ScheduledBatch b = sched.schedule();
  ASSERT_EQ(b.seqs.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(b.seqs[i].seq->id, i + 1);  // FCFS
  EXPECT_EQ(sched.num_running(), 4);
  EXPECT_EQ(sched.num_waiting(), 6);
  Trace tr = run_to_completion(sched);  // checks running <= 4 every step
  EXPECT_EQ(tr.outputs.size(), 10u);
}

TEST(Scheduler, RespectsTheTokenBudgetAndChunksLongPrompts) {
  Scheduler sched(config(8, 32, true, 1000, 16));
  sched.add(make_seq(1, 20, 4));
  sched.add(make_seq(2, 20, 4));
  sched.add(make_seq(3, 30, 4));
  ScheduledBatch b1 = sched.schedule();
  ASSERT_EQ(b1.seqs.size(), 2u);
  EXPECT_EQ(b1.seqs[0].num_tokens, 20);
  EXPECT_TRUE(b1.seqs[0].want_logits);
  EXPECT_EQ(b1.seqs[1].num_tokens, 12);  // the rest of the budget: a chunk
  EXPECT_FALSE(b1.seqs[1].want_logits);
  EXPECT_EQ(b1.num_tokens, 32);
  sched.postprocess(b1, std::vector<int32_t>{next_token(*b1.seqs[0].seq), -1});

  // step 2 mixes seq 1's decode, seq 2's last chunk and seq 3's first chunk
  ScheduledBatch b2 = sched.schedule();
  ASSERT_EQ(b2.seqs.size(), 3u);
  EXPECT_EQ(b2.seqs[0].seq->id, 1u);
  EXPECT_EQ(b2.seqs[0].num_tokens, 1);
  EXPECT_EQ(b2.seqs[1].seq->id, 2u);
  EXPECT_EQ(b2.seqs[1].num_tokens, 8);
  EXPECT_TRUE(b2.seqs[1].want_logits);
  EXPECT_EQ(b2.seqs[2].seq->id, 3u);
  EXPECT_EQ(b2.seqs[2].num_tokens, 23);
  EXPECT_FALSE(b2.seqs[2].want_logits);
  EXPECT_EQ(b2.num_tokens, 32);
}

TEST(Scheduler, WithoutChunkingAPromptGoesWholeOrWaits) {
  Scheduler sched(config(8, 32, false, 1000, 16));
  sched.add(make_seq(1, 20, 4));
  sched.add(make_seq(2, 20, 4));
  sched.add(make_seq(3, 5, 4));
  ScheduledBatch b1 = sched.schedule();
  ASSERT_EQ(b1.seqs.size(), 1u);  // 2 does not fit whole; 3 may not overtake it (FCFS)
  EXPECT_EQ(b1.seqs[0].num_tokens, 20);
  sched.postprocess(b1, std::vector<int32_t>{next_token(*b1.seqs[0].seq)});
  ScheduledBatch b2 = sched.schedule();
  ASSERT_EQ(b2.seqs.size(), 3u);  // 1 token decode + 20 + 5 = 26
  EXPECT_EQ(b2.seqs[1].num_tokens, 20);
  EXPECT_EQ(b2.seqs[2].num_tokens, 5);
  // a sequence that could never be prefilled in one step is refused up front
  EXPECT_THROW(sched.add(make_seq(9, 30, 4)), std::invalid_argument);
}

TEST(Scheduler, FinishesOnLengthEosAndStopTokens) {
  Scheduler sched(config(8, 100, true, 100, 4));
  auto a = make_seq(1, 3, 2);
  auto b = make_seq(2, 3, 10);
  b->sampling.ignore_eos = false;
  auto c = make_seq(3, 3, 10);
  c->sampling.stop_token_ids = {77};
  auto d = make_seq(4, 3, 10);  // ignore_eos: eos does not end it
  sched.add(std::move(a));
  sched.add(std::move(b));
  sched.add(std::move(c));
  sched.add(std::move(d));
  ScheduledBatch b1 = sched.schedule();
  ASSERT_EQ(b1.seqs.size(), 4u);
  sched.postprocess(b1, std::vector<int32_t>{5, 2, 77, 2});
  auto f = sched.take_finished();
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0]->id, 2u);
  EXPECT_EQ(f[0]->finish_reason, FinishReason::kEos);
  EXPECT_EQ(f[1]->id, 3u);
  EXPECT_EQ(f[1]->finish_reason, FinishReason::kStop);
  ScheduledBatch b2 = sched.schedule();
  ASSERT_EQ(b2.seqs.size(), 2u);
  sched.postprocess(b2, std::vector<int32_t>{6, 2});
  f = sched.take_finished();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0]->id, 1u);
  EXPECT_EQ(f[0]->finish_reason, FinishReason::kLength);
  EXPECT_EQ(f[0]->output_tokens, (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(sched.num_running(), 1);
}

TEST(Scheduler, FinishFreesBlocksOfRunningAndWaitingSequences) {
  Scheduler sched(config(1, 100, true, 100, 4));
  sched.add(make_seq(1, 10, 5));
  sched.add(make_seq(2, 10, 5));
  sched.schedule();
  EXPECT_EQ(sched.block_manager().num_used_blocks(), 3);
  sched.finish(sched.find(2), FinishReason::kAborted, "test");  // waiting
  sched.finish(sched.find(1), FinishReason::kAborted, "test");  // running
  EXPECT_EQ(sched.block_manager().num_used_blocks(), 0);
  EXPECT_FALSE(sched.has_unfinished());
  EXPECT_EQ(sched.find(1), nullptr);
  EXPECT_EQ(sched.take_finished().size(), 2u);
}

// A tiny pool forces preemption. The preempted sequence (the most recently admitted) goes back to the front
// of the waiting queue, recomputes prompt + generated tokens, and ends with the same tokens as a run with
// plenty of blocks, each token produced exactly once.
TEST(Scheduler, PreemptsByRecomputeWithoutChangingOutputs) {
  auto add_all = [](Scheduler& s) {
    for (uint64_t id = 1; id <= 6; ++id) s.add(make_seq(id, 5 + static_cast<int>(id), 14));
  };
  Scheduler roomy(config(6, 64, true, 1000, 4));
  add_all(roomy);
  Trace ref = run_to_completion(roomy);
  EXPECT_EQ(roomy.num_preemptions(), 0);

  Scheduler tight(config(6, 64, true, 8, 4));  // 32 tokens of KV for 6 sequences of up to 25
  add_all(tight);
  Trace got = run_to_completion(tight);
  EXPECT_GT(tight.num_preemptions(), 0);
  ASSERT_EQ(got.outputs.size(), 6u);
  int total_preemptions = 0;
  for (uint64_t id = 1; id <= 6; ++id) {
    EXPECT_EQ(got.outputs[id], ref.outputs[id]) << "sequence " << id;
    EXPECT_EQ(got.outputs[id].size(), 14u);
    EXPECT_EQ(got.emitted[id], 14) << "sequence " << id << " produced a token twice";
    total_preemptions += got.preemptions[id];
  }
  EXPECT_EQ(total_preemptions, tight.num_preemptions());
}

TEST(Scheduler, PreemptsTheMostRecentlyAdmittedToTheFrontOfWaiting) {
  Scheduler sched(config(3, 100, true, 6, 4));  // 24 tokens
  sched.add(make_seq(1, 8, 10));
  sched.add(make_seq(2, 8, 10));
  sched.add(make_seq(3, 7, 10));
  sched.add(make_seq(4, 3, 2));
  ScheduledBatch b = sched.schedule();  // 1, 2 and 3 admitted: 2 + 2 + 2 blocks
  ASSERT_EQ(b.seqs.size(), 3u);
  EXPECT_EQ(sched.block_manager().num_free_blocks(), 0);
  std::vector<int32_t> toks;
  for (auto& e : b.seqs) toks.push_back(next_token(*e.seq));
  sched.postprocess(b, toks);
  // 1 and 2 now hold 9 tokens and need a third block each: 3 (the last admitted) is preempted
  b = sched.schedule();
  EXPECT_EQ(sched.num_running(), 2);
  ASSERT_EQ(sched.num_waiting(), 2);
  Sequence* s3 = sched.find(3);
  ASSERT_NE(s3, nullptr);
  EXPECT_EQ(s3->state, SeqState::kWaiting);
  EXPECT_EQ(s3->num_computed_tokens, 0);
  EXPECT_EQ(s3->num_preemptions, 1);
  EXPECT_TRUE(s3->block_table.empty());
  EXPECT_EQ(s3->num_tokens(), 8);  // its generated token is kept and will be recomputed
  ASSERT_EQ(b.seqs.size(), 2u);
  EXPECT_EQ(b.seqs[0].seq->id, 1u);
  EXPECT_EQ(b.seqs[1].seq->id, 2u);
  std::vector<Sequence*> order = sched.unfinished();  // running, then waiting front to back
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(order[2]->id, 3u);  // at the front, ahead of 4 which never ran
  EXPECT_EQ(order[3]->id, 4u);
  Trace tr = run_to_completion(sched);
  EXPECT_EQ(tr.outputs.size(), 4u);
  EXPECT_GE(tr.preemptions[3], 1);
}

TEST(Scheduler, RefusesASequenceThatCanNeverFitThePool) {
  Scheduler sched(config(4, 100, true, 4, 4));
  EXPECT_THROW(sched.add(make_seq(1, 10, 7)), std::invalid_argument);  // 17 tokens > 16
  EXPECT_NO_THROW(sched.add(make_seq(2, 10, 6)));
}

// ---------------------------------------------------------------- prefix caching

std::unique_ptr<Sequence> seq_with(uint64_t id, std::vector<int32_t> prompt, int max_new) {
  auto s = make_seq(id, 0, max_new);
  s->prompt_tokens = std::move(prompt);
  return s;
}

// `shared` tokens of prefix `which`, then `own` tokens of the sequence's own.
std::vector<int32_t> shared_prompt(int which, int shared, uint64_t id, int own) {
  std::vector<int32_t> t;
  for (int i = 0; i < shared; ++i) t.push_back(static_cast<int32_t>(3 + (which * 97 + i * 13) % 400));
  for (int i = 0; i < own; ++i) t.push_back(static_cast<int32_t>(3 + (id * 31 + i * 7) % 400));
  return t;
}

SchedulerConfig caching(SchedulerConfig c) {
  c.enable_prefix_caching = true;
  return c;
}

TEST(Scheduler, PrefixCachingAdmitsPastTheCachedFullBlocks) {
  Scheduler sched(caching(config(4, 256, true, 64, 8)));
  sched.add(seq_with(1, shared_prompt(0, 40, 1, 5), 3));  // 45 tokens: 5 full blocks
  Trace first = run_to_completion(sched);
  EXPECT_EQ(sched.prefix_cache_counters().hit_tokens, 0);
  EXPECT_EQ(sched.prefix_cache_counters().queried_tokens, 45);
  EXPECT_EQ(sched.prefix_cache_counters().queried_blocks, 5);
  EXPECT_EQ(sched.block_manager().num_cached_blocks(), 5);  // 47 tokens computed in the end: 5 full blocks

  sched.add(seq_with(2, shared_prompt(0, 36, 2, 9), 3));  // 4 full blocks in common with sequence 1
  ScheduledBatch b = sched.schedule();
  ASSERT_EQ(b.seqs.size(), 1u);
  const Sequence& s2 = *b.seqs[0].seq;
  EXPECT_EQ(s2.num_computed_tokens, 32);
  EXPECT_EQ(b.seqs[0].num_tokens, 45 - 32);
  EXPECT_TRUE(b.seqs[0].want_logits);
  EXPECT_EQ(sched.prefix_cache_counters().hit_tokens, 32);
  EXPECT_EQ(sched.prefix_cache_counters().hit_blocks, 4);
  EXPECT_EQ(sched.prefix_cache_counters().queried_tokens, 90);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(sched.block_manager().is_cached(s2.block_table[i]));

  // The same prompt again, a whole number of blocks: the last block is computed anyway, for its logits.
  sched.finish(sched.find(2), FinishReason::kAborted);
  sched.add(seq_with(3, shared_prompt(0, 40, 1, 0), 3));
  b = sched.schedule();
  ASSERT_EQ(b.seqs.size(), 1u);
  EXPECT_EQ(b.seqs[0].seq->num_computed_tokens, 32);
  EXPECT_EQ(b.seqs[0].num_tokens, 8);
  EXPECT_TRUE(b.seqs[0].want_logits);
}

// Sequences over four shared prefixes (some identical prompts, some a prefix of another's), in a pool that
// forces preemption and eviction, with chunked prefill: the outputs are those of a roomy run without the
// cache, every token comes once, the shadow KV check of run_to_completion holds at every step, and the
// cache was really used — including by preempted sequences when they come back.
TEST(Scheduler, PrefixCachingWithPreemptionAndEvictionKeepsEveryOutput) {
  auto add_all = [](Scheduler& s) {
    for (uint64_t id = 1; id <= 24; ++id) {
      const int which = static_cast<int>(id % 4);
      const int shared = 8 + 8 * static_cast<int>(id % 3) + static_cast<int>(id % 2);
      s.add(seq_with(id, shared_prompt(which, shared, id, static_cast<int>(id % 5)), 6 + static_cast<int>(id % 7)));
    }
  };
  Scheduler roomy(config(8, 64, true, 1000, 4));
  add_all(roomy);
  const Trace ref = run_to_completion(roomy);
  EXPECT_EQ(roomy.prefix_cache_counters().queried_tokens, 0);  // off: nothing counted

  Scheduler tight(caching(config(8, 24, true, 22, 4)));
  add_all(tight);
  const Trace got = run_to_completion(tight);
  EXPECT_GT(tight.num_preemptions(), 5);
  const PrefixCacheCounters& pc = tight.prefix_cache_counters();
  EXPECT_GT(pc.hit_blocks, 30);
  EXPECT_LT(pc.hit_blocks, pc.queried_blocks);
  EXPECT_EQ(pc.hit_tokens, pc.hit_blocks * 4);
  ASSERT_EQ(got.outputs.size(), 24u);
  for (uint64_t id = 1; id <= 24; ++id) {
    EXPECT_EQ(got.outputs.at(id), ref.outputs.at(id)) << "sequence " << id;
    EXPECT_EQ(got.emitted.at(id), 6 + static_cast<int>(id % 7)) << "sequence " << id << " produced a token twice";
  }
  EXPECT_EQ(tight.block_manager().num_free_blocks(), 22);  // all back: held by nobody, some still cached
  EXPECT_GT(tight.block_manager().num_cached_blocks(), 0);
}

TEST(StopMatcher, HoldsBackPartialMatchesAndCutsAtTheMatch) {
  StopMatcher m({"END", "\n\n"});
  EXPECT_EQ(m.push("hello E"), "hello ");  // "E" may start "END"
  EXPECT_EQ(m.push("x"), "Ex");            // ruled out: released
  EXPECT_EQ(m.push(" and EN"), " and ");
  EXPECT_EQ(m.push("D tail"), "");         // matched: nothing after is emitted
  EXPECT_TRUE(m.matched());
  EXPECT_EQ(m.push("more"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, EarliestMatchWinsAndFlushReleasesTheRest) {
  StopMatcher m({"bc", "abcd"});
  EXPECT_EQ(m.push("xab"), "x");
  EXPECT_EQ(m.push("cd"), "");  // "abcd" starts first
  EXPECT_TRUE(m.matched());
  StopMatcher n({"STOP"});
  EXPECT_EQ(n.push("ST"), "");
  EXPECT_EQ(n.flush(), "ST");
  StopMatcher none;
  EXPECT_EQ(none.push("anything"), "anything");
}

}  // namespace
}  // namespace engine
