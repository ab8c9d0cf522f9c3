// test-deps: engine
// EngineConfig::enable_prefix_caching on the CPU backend with deterministic kernels: requests over shared
// prefixes (identical prompts, a prompt that is a whole number of blocks of another's, greedy and
// teacher-forced) produce logits bit-identical to each request run alone without the cache — when later
// requests hit what earlier ones computed, when a request sharing those blocks is aborted midway, and in a
// pool so small that sequences are preempted and cached blocks evicted; and EngineStats counts the hits.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "engine/engine.h"

namespace engine {
namespace {

constexpr int kSteps = 6;      // captured steps
constexpr int kNewTokens = 24; // generated: enough to cross block boundaries (and so preempt in a small pool)
constexpr int kBlock = 16;

struct LogitsSink : RequestSink {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> steps;
  FinishReason reason = FinishReason::kError;
  void on_token(const TokenEvent& ev) override {
    tokens.push_back(ev.token);
    if (!ev.logits.empty()) steps.emplace_back(ev.logits.begin(), ev.logits.end());
  }
  void on_finish(const FinishEvent& ev) override { reason = ev.reason; }
};

// Random token ids of dummy:tiny's vocabulary (512), seeded.
std::vector<int32_t> tokens(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(3 + rng() % 500);
  return t;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The requests: three prefixes, suffixes of several lengths, a repeat, a prompt that is exactly 6 blocks of
// prefix 0 (so its last block is recomputed, never written into a shared one), and forced tokens on some.
std::vector<Request> requests() {
  const std::vector<int32_t> p0 = tokens(100, 1), p1 = tokens(133, 2), p2 = tokens(70, 3);
  std::vector<std::vector<int32_t>> prompts = {
      concat(p0, tokens(20, 10)), concat(p1, tokens(5, 11)),  concat(p2, tokens(40, 12)),
      concat(p0, tokens(37, 13)), concat(p1, tokens(5, 11)),  concat(p0, tokens(1, 14)),
      std::vector<int32_t>(p0.begin(), p0.begin() + 6 * kBlock), concat(p2, tokens(3, 15)),
  };
  std::vector<Request> out;
  for (size_t i = 0; i < prompts.size(); ++i) {
    Request r;
    r.prompt_tokens = prompts[i];
    r.sampling.max_new_tokens = kNewTokens;
    r.sampling.ignore_eos = true;
    r.capture_logits_steps = kSteps;
    if (i % 3 == 1) r.forced_tokens = tokens(kSteps, 100 + i);
    r.tag = "request " + std::to_string(i);
    out.push_back(std::move(r));
  }
  return out;
}

EngineConfig config(bool caching) {
  EngineConfig c;
  c.model = "dummy:tiny";
  c.deterministic = true;
  c.background_thread = false;
  c.block_size = kBlock;
  c.kv_memory_bytes = 16 << 20;
  c.enable_prefix_caching = caching;
  return c;
}

using Sinks = std::vector<std::shared_ptr<LogitsSink>>;

// Each request alone in an engine without the cache: the reference.
Sinks run_alone() {
  Sinks out;
  for (Request& r : requests()) {
    EngineConfig c = config(false);
    c.max_num_seqs = 1;
    Engine eng(c);
    out.push_back(std::make_shared<LogitsSink>());
    eng.submit(std::move(r), out.back());
    eng.run_until_idle();
  }
  return out;
}

void expect_bitwise_equal(const Sinks& ref, const Sinks& got, const std::string& label) {
  ASSERT_EQ(ref.size(), got.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_EQ(got[i]->steps.size(), size_t(kSteps)) << label << ": request " << i;
    ASSERT_EQ(got[i]->tokens.size(), size_t(kNewTokens)) << label << ": request " << i;
    EXPECT_EQ(got[i]->tokens, ref[i]->tokens) << label << ": request " << i;
    for (int s = 0; s < kSteps; ++s) {
      ASSERT_EQ(got[i]->steps[s].size(), ref[i]->steps[s].size());
      EXPECT_EQ(std::memcmp(got[i]->steps[s].data(), ref[i]->steps[s].data(), ref[i]->steps[s].size() * sizeof(float)), 0)
          << label << ": request " << i << " step " << s << ": logits differ bitwise from the run without the cache";
    }
  }
}

TEST(PrefixCaching, LogitsAreBitIdenticalWithAndWithoutTheCache) {
  const Sinks ref = run_alone();

  // The first request of each prefix runs first; the rest come after, 8 to a batch with 48-token steps (prefill
  // chunks among decodes), beside a request over prefix 0 that is aborted while it shares blocks with them.
  EngineConfig c = config(true);
  c.max_num_seqs = 8;
  c.max_num_batched_tokens = 48;
  Engine eng(c);
  std::vector<Request> reqs = requests();
  Sinks got(reqs.size());
  auto submit = [&](size_t i) {
    got[i] = std::make_shared<LogitsSink>();
    eng.submit(reqs[i], got[i]);
  };
  for (size_t i : {0, 1, 2}) submit(i);
  eng.run_until_idle();
  const EngineStats cold = eng.stats();
  EXPECT_EQ(cold.prefix_cache_hits, 0);
  EXPECT_EQ(cold.prefix_cache_queries, 120 + 138 + 110);

  Request doomed = reqs[3];
  doomed.sampling.max_new_tokens = 200;
  auto doomed_sink = std::make_shared<LogitsSink>();
  const uint64_t doomed_id = eng.submit(std::move(doomed), doomed_sink);
  for (size_t i = 3; i < reqs.size(); ++i) submit(i);
  for (int s = 0; s < 12; ++s) eng.step();
  eng.abort(doomed_id);
  eng.run_until_idle();
  EXPECT_EQ(doomed_sink->reason, FinishReason::kAborted);
  ASSERT_NO_FATAL_FAILURE(expect_bitwise_equal(ref, got, "hits after a cold start"));
  const EngineStats warm = eng.stats();
  // Request 3 (and the aborted copy) hit prefix 0's 6 full blocks, 4 hits prefix 1's 8 blocks (its whole
  // prompt but the last token's block), 5 hits 6 blocks, 6 hits 5 (the last block is computed), 7 hits 4.
  EXPECT_EQ(warm.prefix_cache_block_hits, 6 + 6 + 8 + 6 + 5 + 4);
  EXPECT_EQ(warm.prefix_cache_hits, (6 + 6 + 8 + 6 + 5 + 4) * kBlock);
  EXPECT_GT(warm.prefix_cache_queries, warm.prefix_cache_hits);
  EXPECT_EQ(warm.kv_blocks_used, 0);

  // A pool of 14 blocks for 8 requests of up to 9 each: preemption, eviction and readmission hits.
  EngineConfig tight = config(true);
  tight.max_num_seqs = 8;
  tight.max_num_batched_tokens = 32;  // admitted a chunk at a time: they run out of blocks as they grow
  tight.num_kv_blocks = 14;
  Engine small(tight);
  Sinks squeezed;
  for (Request& r : requests()) {
    squeezed.push_back(std::make_shared<LogitsSink>());
    small.submit(std::move(r), squeezed.back());
  }
  small.run_until_idle();
  ASSERT_NO_FATAL_FAILURE(expect_bitwise_equal(ref, squeezed, "preempted in a small pool"));
  const EngineStats st = small.stats();
  EXPECT_GT(st.preemptions_total, 0);
  EXPECT_GT(st.prefix_cache_hits, 0);
}

}  // namespace
}  // namespace engine
