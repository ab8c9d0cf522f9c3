// test-deps: engine_internals
// ModelRunner: the backend's flat StepBatch built from a scheduled batch, and the token it chooses per
// sequence (forced, argmax, or drawn with the sequence's own RNG), with full logits rows brought back from the
// backend only when a capture or a sampled step needs them.
#include "model_runner.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "backend/backend.h"
#include "sampling/sampler.h"

namespace engine {
namespace {

constexpr int kVocab = 8;

// Hands back preset rows: the r-th want_logits sequence of a step gets rows[r]. Counts which forward ran.
struct FakeBackend : Backend {
  std::vector<std::vector<float>> rows;
  int forwards = 0, argmax_forwards = 0;

  std::string name() const override { return "fake"; }
  std::string dtype() const override { return "f32"; }
  void load(const ModelWeights&) override {}
  int64_t kv_bytes_per_token() const override { return 0; }
  int64_t default_kv_budget_bytes() const override { return 0; }
  void allocate_kv_cache(int64_t, int) override {}
  int vocab_size() const override { return kVocab; }
  void forward(const StepBatch& batch, float* logits) override {
    forwards++;
    for (int r = 0; r < batch.num_logits(); ++r) std::copy(rows[r].begin(), rows[r].end(), logits + r * kVocab);
  }
  void forward_argmax(const StepBatch& batch, int32_t* ids) override {
    argmax_forwards++;
    for (int r = 0; r < batch.num_logits(); ++r)
      ids[r] = static_cast<int32_t>(std::max_element(rows[r].begin(), rows[r].end()) - rows[r].begin());
  }
};

// A sequence whose 3-token prompt is fully scheduled in one step (one block of 16).
std::unique_ptr<Sequence> prompt_seq(uint64_t id) {
  auto s = std::make_unique<Sequence>();
  s->id = id;
  s->prompt_tokens = {1, 2, 3};
  s->sampling.max_new_tokens = 4;
  s->block_table = {static_cast<int32_t>(id)};
  return s;
}

const std::vector<float> kRowA = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 2.0f, 0.0f, 0.0f};  // argmax 5
const std::vector<float> kRowB = {1.0f, 0.5f, 3.0f, 0.5f, 1.0f, 0.5f, 2.5f, 0.5f};  // argmax 2

// A runner over a FakeBackend, and the sequences of one step (each scheduled whole).
struct RunnerStep : ::testing::Test {
  FakeBackend be;
  ModelRunner runner{be, kVocab, 16};
  std::vector<std::unique_ptr<Sequence>> seqs;

  Sequence& add() {
    seqs.push_back(prompt_seq(seqs.size() + 1));
    return *seqs.back();
  }
  ScheduledBatch batch() const {
    ScheduledBatch b;
    for (const auto& s : seqs) b.seqs.push_back({s.get(), s->num_prompt_tokens(), true});
    return b;
  }
  std::vector<int32_t> run(const ScheduledBatch& b) {
    std::span<const int32_t> t = runner.run(b);
    return {t.begin(), t.end()};
  }
  std::vector<float> row(size_t i) const {
    std::span<const float> r = runner.logits(i);
    return {r.begin(), r.end()};
  }
};

// The runner's flat batch for a step that mixes a decode, a whole prompt and a prompt chunk.
TEST(ModelRunner, BuildsTheFlatStepBatch) {
  SchedulerConfig sc;
  sc.max_num_seqs = 8;
  sc.max_num_batched_tokens = 30;
  sc.num_kv_blocks = 64;
  sc.block_size = 4;
  Scheduler sched(sc);
  auto seq = [](uint64_t id, int n, int first) {
    auto s = std::make_unique<Sequence>();
    s->id = id;
    for (int i = 0; i < n; ++i) s->prompt_tokens.push_back(first + i);
    s->sampling.max_new_tokens = 10;
    return s;
  };
  sched.add(seq(1, 6, 100));
  ScheduledBatch b0 = sched.schedule();
  sched.postprocess(b0, std::vector<int32_t>{400});  // seq 1: 6 computed, then token 400
  sched.add(seq(2, 9, 200));
  sched.add(seq(3, 40, 300));
  ScheduledBatch b = sched.schedule();  // 1 decode + 9 + a 20-token chunk of seq 3
  ASSERT_EQ(b.seqs.size(), 3u);

  FakeBackend be;
  ModelRunner runner(be, 512, 4);
  const StepBatch& sb = runner.prepare(b);
  ASSERT_EQ(sb.num_tokens(), 30);
  ASSERT_EQ(sb.seqs.size(), 3u);
  EXPECT_EQ(sb.num_logits(), 2);
  EXPECT_EQ(sb.tokens[0], 400);  // seq 1's last token at position 6
  EXPECT_EQ(sb.positions[0], 6);
  const SeqSlice& d = sb.seqs[0];
  EXPECT_EQ(d.query_start, 0);
  EXPECT_EQ(d.query_len, 1);
  EXPECT_EQ(d.context_len, 7);
  EXPECT_EQ(d.num_blocks, 2);
  EXPECT_TRUE(d.want_logits);
  const SeqSlice& p = sb.seqs[1];
  EXPECT_EQ(p.query_start, 1);
  EXPECT_EQ(p.query_len, 9);
  EXPECT_EQ(p.context_len, 9);
  EXPECT_EQ(p.num_blocks, 3);
  EXPECT_TRUE(p.want_logits);
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(sb.tokens[1 + i], 200 + i);
    EXPECT_EQ(sb.positions[1 + i], i);
  }
  const SeqSlice& c = sb.seqs[2];
  EXPECT_EQ(c.query_start, 10);
  EXPECT_EQ(c.query_len, 20);
  EXPECT_EQ(c.context_len, 20);
  EXPECT_EQ(c.num_blocks, 5);
  EXPECT_FALSE(c.want_logits);
  EXPECT_EQ(sb.tokens[29], 319);
  // each slice's block ids are that sequence's table
  ASSERT_EQ(sb.block_tables.size(), 2u + 3u + 5u);
  for (size_t k = 0; k < 3; ++k) {
    const Sequence& s = *b.seqs[k].seq;
    for (int j = 0; j < sb.seqs[k].num_blocks; ++j)
      EXPECT_EQ(sb.block_tables[sb.seqs[k].block_table_start + j], s.block_table[j]);
  }
}

TEST_F(RunnerStep, GreedyStepsBringBackOnlyArgmaxIds) {
  be.rows = {kRowA, kRowB};
  add();
  add();
  EXPECT_EQ(run(batch()), (std::vector<int32_t>{5, 2}));
  EXPECT_EQ(be.argmax_forwards, 1);
  EXPECT_EQ(be.forwards, 0);
  EXPECT_TRUE(runner.logits(0).empty());
  EXPECT_TRUE(runner.logits(1).empty());
}

TEST_F(RunnerStep, AForcedTokenWinsAndDrawsNothing) {
  be.rows = {kRowA};
  Sequence& s = add();
  s.forced_tokens = {7, 6};
  s.sampling.temperature = 1.0f;  // forced steps do not sample, so they need no rows
  s.rng.seed(3);
  const std::mt19937_64 before = s.rng;
  EXPECT_EQ(run(batch()), (std::vector<int32_t>{7}));
  EXPECT_EQ(be.forwards, 0);
  EXPECT_EQ(s.rng, before);
}

TEST_F(RunnerStep, ASampledStepBringsRowsAndDrawsWithItsOwnRng) {
  be.rows = {kRowA, kRowB};
  add();  // greedy: the argmax of its row, also when the step brings rows
  Sequence& sampled = add();
  sampled.sampling.temperature = 1.0f;
  sampled.rng.seed(11);
  std::mt19937_64 expected_rng(11);
  const int32_t expected = Sampler::sample(kRowB, sampled.sampling, expected_rng);
  EXPECT_EQ(run(batch()), (std::vector<int32_t>{5, expected}));
  EXPECT_EQ(be.forwards, 1);
  EXPECT_EQ(be.argmax_forwards, 0);
  EXPECT_EQ(sampled.rng, expected_rng);  // advanced by exactly that one draw
  EXPECT_EQ(row(0), kRowA);
  EXPECT_EQ(row(1), kRowB);
}

TEST_F(RunnerStep, ACapturedStepBringsRows) {
  be.rows = {kRowB};
  add().capture_logits_steps = 1;
  EXPECT_EQ(run(batch()), (std::vector<int32_t>{2}));
  EXPECT_EQ(be.forwards, 1);
  EXPECT_EQ(row(0), kRowB);
}

TEST_F(RunnerStep, APromptChunkShortOfItsEndGetsNoTokenAndNoRow) {
  be.rows = {kRowA};
  add();
  add().capture_logits_steps = 1;
  ScheduledBatch b = batch();
  b.seqs[0].num_tokens = 2;  // 2 of 3 prompt tokens: no token this step
  b.seqs[0].want_logits = false;
  EXPECT_EQ(run(b), (std::vector<int32_t>{-1, 5}));  // the step's only row is the second sequence's
  EXPECT_TRUE(runner.logits(0).empty());
  EXPECT_EQ(row(1), kRowA);
}

}  // namespace
}  // namespace engine
