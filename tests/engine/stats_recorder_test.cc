// test-deps: engine_internals
// StatsRecorder: counters add up over steps, gauges are the last step's, tokens/s is over the last
// StatsRecorder::kWindow of steps and reads 0 once the engine has been idle that long.
#include "stats/stats_recorder.h"

#include <gtest/gtest.h>

namespace engine {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

StepRecord step(int64_t generated, int running = 1) {
  StepRecord s;
  s.ran_batch = true;
  s.generated_tokens = generated;
  s.running = running;
  return s;
}

TEST(StatsRecorder, CountersAddUpAndGaugesAreTheLastSteps) {
  const Clock::time_point t0 = Clock::now();
  StatsRecorder rec(100, t0);
  StepRecord a = step(3, 2);
  a.prompt_tokens = 40;
  a.waiting = 5;
  a.kv_blocks_used = 9;
  a.preemptions_total = 1;
  rec.record(a, t0 + milliseconds(10));
  StepRecord idle;  // took nothing in and ran nothing: not a step
  idle.preemptions_total = 1;
  rec.record(idle, t0 + milliseconds(20));
  StepRecord b = step(2, 1);
  b.preemptions_total = 1;
  rec.record(b, t0 + milliseconds(30));
  EngineStats s = rec.snapshot(t0 + milliseconds(30));
  EXPECT_EQ(s.kv_blocks_total, 100);
  EXPECT_EQ(s.steps, 2);
  EXPECT_EQ(s.prompt_tokens_total, 40);
  EXPECT_EQ(s.generated_tokens_total, 5);
  EXPECT_EQ(s.running, 1);
  EXPECT_EQ(s.waiting, 0);
  EXPECT_EQ(s.kv_blocks_used, 0);
  EXPECT_EQ(s.preemptions_total, 1);
}

TEST(StatsRecorder, TokensPerSecondOverTheWindow) {
  const Clock::time_point t0 = Clock::now();
  StatsRecorder rec(1, t0);
  rec.record(step(7), t0);  // opens the window: its tokens came before t0
  EXPECT_EQ(rec.snapshot(t0).tokens_per_s, 0.0);
  rec.record(step(10), t0 + seconds(1));
  rec.record(step(10), t0 + seconds(2));
  EXPECT_DOUBLE_EQ(rec.snapshot(t0 + seconds(2)).tokens_per_s, 10.0);
  // steps older than the window drop out: at t0 + 7 s the window starts at t0 + 2 s
  rec.record(step(50), t0 + seconds(7));
  EXPECT_DOUBLE_EQ(rec.snapshot(t0 + seconds(7)).tokens_per_s, 10.0);
}

TEST(StatsRecorder, IdleForAWindowReadsZeroTokensPerSecond) {
  const Clock::time_point t0 = Clock::now();
  StatsRecorder rec(1, t0);
  rec.record(step(0), t0);
  rec.record(step(10), t0 + seconds(1));
  EXPECT_GT(rec.snapshot(t0 + seconds(1) + StatsRecorder::kWindow).tokens_per_s, 0.0);
  EXPECT_EQ(rec.snapshot(t0 + seconds(2) + StatsRecorder::kWindow).tokens_per_s, 0.0);
  EXPECT_EQ(rec.snapshot(t0 + seconds(2) + StatsRecorder::kWindow).generated_tokens_total, 10);
}

}  // namespace
}  // namespace engine
