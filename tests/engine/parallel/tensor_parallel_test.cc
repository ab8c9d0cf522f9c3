// test-deps: engine_internals
// Tensor parallelism's sharding on the CPU: a model's weights split N ways (parallel/shard_weights.h), the
// N shards run with the CPU backend's kernels (parallel/cpu_shard.h), and their outputs combined here as
// the collectives would combine them — partial sums added (all-reduce) after the embedding, each attention
// block and each MLP, logits slices joined (all-gather) — must give the unsharded CPU backend's logits within
// 1e-5 (numpy allclose, rtol = atol = 1e-5; dummy weights, logits ~1) or 1e-4 (real checkpoints, see kRealTol)
// and the plain float64 Llama within 1e-4, over three steps that mix prefills, a chunked prefill and decodes, with K/V read back from each
// shard's own cache (its KV heads only). Shapes: N = 2, 4, 8 on dummy weights with 16 heads (MHA; GQA that
// splits; GQA with fewer KV heads than ranks, replicated), tied and untied, and the real stories260K and
// tiny-llama checkpoints.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/llama_f64.h"
#include "model/model.h"
#include "parallel/cpu_shard.h"
#include "parallel/shard_weights.h"
#include "parallel/tp_plan.h"
#include "support/test_paths.h"

namespace {

using engine::ModelConfig;
using engine::ModelWeights;
using engine::SeqSlice;
using engine::StepBatch;
using engine::parallel::CpuShard;
using engine::parallel::TpPlan;

constexpr int kBlockSize = 4, kNumBlocks = 12;
constexpr double kTol = 1e-5;
// The real checkpoints' logits reach 12 (stories260K), and there the unsharded CPU backend itself is 9.4e-6
// from float64: they are held to the project's CPU-vs-reference tolerance instead, as is every case's
// distance to float64.
constexpr double kRealTol = 1e-4;

ModelConfig shape(int n_heads, int n_kv_heads, bool tied) {
  ModelConfig c;
  c.name = "dummy shape " + std::to_string(n_heads) + "/" + std::to_string(n_kv_heads);
  c.dim = 256;
  c.hidden_dim = 384;
  c.n_layers = 2;
  c.n_heads = n_heads;
  c.n_kv_heads = n_kv_heads;
  c.head_dim = c.dim / n_heads;
  c.vocab_size = 512;
  c.max_seq_len = 64;
  c.tied_embeddings = tied;
  return c;
}

/// Three steps over sequences A, B, C with scattered KV blocks: (1) A prefills 9 tokens, B 5; (2) A decodes,
/// B prefills 3 more, C the first 4 of its 6 (no logits yet); (3) A and B decode, C prefills its last 2.
std::vector<StepBatch> steps(int vocab) {
  std::mt19937 rng(17);
  std::uniform_int_distribution<int> tok(0, vocab - 1);
  const std::vector<std::vector<int32_t>> tables = {{7, 2, 11}, {0, 5, 9}, {3, 8}};
  struct Part { int seq, len, context; bool logits; };
  const std::vector<std::vector<Part>> plan = {
      {{0, 9, 9, true}, {1, 5, 5, true}},
      {{0, 1, 10, true}, {1, 3, 8, true}, {2, 4, 4, false}},
      {{0, 1, 11, true}, {1, 1, 9, true}, {2, 2, 6, true}}};
  std::vector<StepBatch> out;
  for (const auto& parts : plan) {
    StepBatch b;
    for (const Part& p : parts) {
      SeqSlice s;
      s.query_start = b.num_tokens();
      s.query_len = p.len;
      s.context_len = p.context;
      s.block_table_start = int(b.block_tables.size());
      s.num_blocks = int(tables[p.seq].size());
      s.want_logits = p.logits;
      b.block_tables.insert(b.block_tables.end(), tables[p.seq].begin(), tables[p.seq].end());
      for (int j = 0; j < p.len; ++j) {
        b.tokens.push_back(tok(rng));
        b.positions.push_back(p.context - p.len + j);
      }
      b.seqs.push_back(s);
    }
    out.push_back(b);
  }
  return out;
}

/// What the collectives do, done in the test: returns the [rows, vocab] logits of step `b`.
/// `drop_mlp_rank`: leave that rank's MLP partial sums out (the check that the comparison can fail).
std::vector<float> tp_step(std::vector<CpuShard>& shards, const StepBatch& b, int n_layers, int dim, int vocab,
                           int drop_mlp_rank = -1) {
  const int T = b.num_tokens(), N = int(shards.size()), part = vocab / N, rows = b.num_logits();
  const size_t n = size_t(T) * dim;
  std::vector<float> x(n, 0.0f), acc(n), tmp(n);
  for (auto& s : shards) {  // all-reduce of the vocabulary-parallel embedding
    s.embed(b, tmp.data());
    for (size_t i = 0; i < n; ++i) x[i] += tmp[i];
  }
  for (int l = 0; l < n_layers; ++l) {
    acc = x;
    for (auto& s : shards) {  // all-reduce after the row-parallel Wo
      s.attention(l, b, x.data(), tmp.data());
      for (size_t i = 0; i < n; ++i) acc[i] += tmp[i];
    }
    x = acc;
    for (auto& s : shards) {  // all-reduce after the row-parallel Wdown
      s.mlp(l, x.data(), T, tmp.data());
      if (s.rank() == drop_mlp_rank) continue;
      for (size_t i = 0; i < n; ++i) acc[i] += tmp[i];
    }
    x = acc;
  }
  std::vector<float> logits(size_t(rows) * vocab), slice(size_t(rows) * part);
  for (auto& s : shards) {  // all-gather of the vocabulary-parallel LM head
    s.logits(b, x.data(), slice.data());
    for (int r = 0; r < rows; ++r)
      std::copy_n(slice.begin() + size_t(r) * part, part, logits.begin() + size_t(r) * vocab + size_t(s.rank()) * part);
  }
  return logits;
}

struct Result {
  double max_diff = 0;  ///< over every step's logits
  double max_ref = 0;   ///< largest |logit| of the unsharded model (the comparison is not of zeros)
  double worst = 0;     ///< largest |got - want| / (atol + rtol * |want|): <= 1 passes allclose
  double max_diff_f64 = 0;  ///< the sharded logits of step 1's first row against float64
};

Result compare(const ModelWeights& w, int N, double tol, int drop_mlp_rank = -1) {
  const ModelConfig& c = w.config;
  const TpPlan plan = engine::parallel::make_tp_plan(c, N, "--tensor-parallel-size");
  std::vector<CpuShard> shards;
  for (int r = 0; r < N; ++r) {
    shards.emplace_back(w, plan, r);
    shards.back().allocate_kv_cache(kNumBlocks, kBlockSize);
  }
  auto ref = engine::cpu::make_cpu_backend(engine::EngineConfig{});
  ref->load(w);
  ref->allocate_kv_cache(kNumBlocks, kBlockSize);
  Result res;
  bool first = true;
  for (const StepBatch& b : steps(c.vocab_size)) {
    std::vector<float> want(size_t(b.num_logits()) * c.vocab_size);
    ref->forward(b, want.data());
    const std::vector<float> got = tp_step(shards, b, c.n_layers, c.dim, c.vocab_size, drop_mlp_rank);
    if (first) {  // sequence A's 9-token prefill against the plain float64 Llama
      first = false;
      const std::vector<int32_t> a(b.tokens.begin(), b.tokens.begin() + b.seqs[0].query_len);
      const std::vector<double> f64 = engine::reference::llama_f64_logits(w, a, int(a.size()) - 1).at(0);
      for (int i = 0; i < c.vocab_size; ++i) res.max_diff_f64 = std::max(res.max_diff_f64, std::fabs(got[i] - f64[i]));
    }
    for (size_t i = 0; i < want.size(); ++i) {
      res.max_diff = std::max(res.max_diff, std::fabs(double(got[i]) - double(want[i])));
      res.max_ref = std::max(res.max_ref, std::fabs(double(want[i])));
      res.worst = std::max(res.worst, std::fabs(double(got[i]) - double(want[i])) / (tol + tol * std::fabs(double(want[i]))));
    }
  }
  return res;
}

struct ShapeCase {
  const char* name;
  int n_heads, n_kv_heads, N;
  bool tied;
};

class TensorParallelShapes : public ::testing::TestWithParam<ShapeCase> {};

TEST_P(TensorParallelShapes, ShardsCombinedMatchUnshardedLogits) {
  const ShapeCase& p = GetParam();
  const ModelWeights w = engine::make_dummy_weights(shape(p.n_heads, p.n_kv_heads, p.tied), 5);
  const Result r = compare(w, p.N, kTol);
  EXPECT_GT(r.max_ref, 1e-3);
  EXPECT_LE(r.worst, 1.0) << "max |diff| " << r.max_diff << ", largest |logit| " << r.max_ref;
  EXPECT_LE(r.max_diff_f64, kRealTol);
  std::printf("max |diff| %.3g, largest |logit| %.3g, allclose ratio %.3g; vs float64 %.3g\n", r.max_diff, r.max_ref,
              r.worst, r.max_diff_f64);
}

INSTANTIATE_TEST_SUITE_P(
    Sharding, TensorParallelShapes,
    ::testing::Values(ShapeCase{"mha_n2", 16, 16, 2, false}, ShapeCase{"mha_n4", 16, 16, 4, true},
                      ShapeCase{"mha_n8", 16, 16, 8, false}, ShapeCase{"gqa_split_n2", 16, 8, 2, true},
                      ShapeCase{"gqa_split_n8", 16, 8, 8, false},
                      ShapeCase{"gqa_replicated_n4", 16, 2, 4, false},  // each KV head on 2 ranks
                      ShapeCase{"gqa_replicated_n8", 16, 2, 8, true}),  // each KV head on 4 ranks
    [](const ::testing::TestParamInfo<ShapeCase>& i) { return std::string(i.param.name); });

TEST(TensorParallel, LeavingOutOneRanksPartialSumsIsCaught) {
  const ModelWeights w = engine::make_dummy_weights(shape(16, 16, false), 5);
  EXPECT_GT(compare(w, 2, kTol, /*drop_mlp_rank=*/1).worst, 100.0);
}

TEST(TensorParallel, Stories260KSplitsFourWays) {
  REQUIRE_SHARED("models/stories260K/stories260K.bin");
  const ModelWeights w = engine::load_model(testing_paths::shared("models/stories260K/stories260K.bin").string());
  for (int N : {2, 4}) {  // 8 heads, 4 KV heads, intermediate 172
    const Result r = compare(w, N, kRealTol);
    EXPECT_GT(r.max_ref, 1e-2);
    EXPECT_LE(r.worst, 1.0) << "N = " << N << ", max |diff| " << r.max_diff << ", largest |logit| " << r.max_ref;
    EXPECT_LE(r.max_diff_f64, kRealTol);
    std::printf("N = %d: max |diff| %.3g, largest |logit| %.3g, allclose ratio %.3g; vs float64 %.3g\n", N,
                r.max_diff, r.max_ref, r.worst, r.max_diff_f64);
  }
}

TEST(TensorParallel, TinyLlamaReplicatesItsKvHeadsOverFourRanks) {
  REQUIRE_SHARED("models/tiny-llama/config.json");
  const ModelWeights w = engine::load_model(testing_paths::shared("models/tiny-llama").string());
  for (int N : {2, 4}) {  // 4 heads, 2 KV heads (N = 4 replicates each on 2 ranks), vocabulary 32000
    const Result r = compare(w, N, kRealTol);
    EXPECT_GT(r.max_ref, 1e-2);
    EXPECT_LE(r.worst, 1.0) << "N = " << N << ", max |diff| " << r.max_diff << ", largest |logit| " << r.max_ref;
    EXPECT_LE(r.max_diff_f64, kRealTol);
    std::printf("N = %d: max |diff| %.3g, largest |logit| %.3g, allclose ratio %.3g; vs float64 %.3g\n", N,
                r.max_diff, r.max_ref, r.worst, r.max_diff_f64);
  }
}

TEST(TensorParallel, EachRankCachesOnlyItsKvHeads) {
  const ModelWeights w = engine::make_dummy_weights(shape(16, 2, false), 5);
  const int64_t full = int64_t(2) * 2 * 2 * 16 * sizeof(float);  // K and V, 2 layers, 2 KV heads of 16
  const TpPlan split = engine::parallel::make_tp_plan(w.config, 2, "n");
  EXPECT_EQ(CpuShard(w, split, 1).kv_bytes_per_token(), full / 2);
  const TpPlan replicated = engine::parallel::make_tp_plan(w.config, 8, "n");
  EXPECT_EQ(CpuShard(w, replicated, 7).kv_bytes_per_token(), full / 2);  // one KV head, as with N = 2
}

TEST(ShardWeights, SlicesRowsAndColumnsOfEachRank) {
  ModelConfig c = shape(16, 2, true);
  const ModelWeights w = engine::make_dummy_weights(c, 5);
  const TpPlan plan = engine::parallel::make_tp_plan(c, 4, "n");
  const ModelWeights s = engine::parallel::shard_weights(w, plan, 3);
  const int hd = c.head_dim;
  EXPECT_EQ(s.config.n_heads, 4);
  EXPECT_EQ(s.config.n_kv_heads, 1);
  EXPECT_EQ(s.config.hidden_dim, 96);
  EXPECT_EQ(s.config.vocab_size, 128);
  EXPECT_EQ(s.layers[0].wq.shape, (std::vector<int64_t>{4 * hd, c.dim}));
  EXPECT_EQ(s.layers[0].wk.shape, (std::vector<int64_t>{hd, c.dim}));
  EXPECT_EQ(s.layers[0].wo.shape, (std::vector<int64_t>{c.dim, 4 * hd}));
  EXPECT_EQ(s.layers[0].w_down.shape, (std::vector<int64_t>{c.dim, 96}));
  EXPECT_EQ(s.lm_head.data, s.tok_embeddings.data);  // still tied
  const std::vector<float> wq = w.layers[1].wq.to_f32(), wk = w.layers[1].wk.to_f32(), wo = w.layers[1].wo.to_f32();
  const std::vector<float> sq = s.layers[1].wq.to_f32(), sk = s.layers[1].wk.to_f32(), so = s.layers[1].wo.to_f32();
  // rank 3 of 4: heads 12..15; KV head 1 (heads 8..15 read it); columns 12*hd.. of wo.
  EXPECT_EQ(sq[0], wq[size_t(12 * hd) * c.dim]);
  EXPECT_EQ(sk.back(), wk.back());
  EXPECT_EQ(sk[0], wk[size_t(hd) * c.dim]);
  EXPECT_EQ(so[size_t(5) * 4 * hd + 3], wo[size_t(5) * c.dim + 12 * hd + 3]);
  EXPECT_THROW(engine::parallel::shard_weights(w, plan, 4), std::invalid_argument);
}

}  // namespace
