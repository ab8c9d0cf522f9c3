// test-deps: engine_internals
// The whole CUDA forward pass, in both modes (bf16, and f32 with dtype "f32"): against a float64 reference
// Llama on a random GQA model (prefill, chunked prefill mixed with decodes, graph-replayed decode steps,
// block tables with gaps), and against the CPU backend on tiny-llama (and, with LLM_CUDA_TEST_7B=1, on
// dummy:llama-2-7b). Skips without a device.
#include <gtest/gtest.h>

#ifdef LLM_HAVE_CUDA
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/llama_f64.h"
#include "support/cuda_backend_compare.h"
#include "support/cuda_test_util.h"
#include "model/model.h"
#include "support/test_paths.h"

using namespace cuda_test;
using engine::ModelWeights;

namespace {

// ---------------------------------------------------------------- a random model and its float64 forward

engine::Tensor make_tensor(ModelWeights& w, std::vector<int64_t> shape, std::mt19937_64& rng, float lo, float hi) {
  size_t n = 1;
  for (int64_t d : shape) n *= size_t(d);
  auto buf = std::make_shared<std::vector<bf16>>(n);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (auto& x : *buf) x = b(dist(rng));
  engine::Tensor t;
  t.dtype = engine::DType::kBF16;
  t.shape = std::move(shape);
  t.data = buf->data();
  w.storage.push_back(buf);
  return t;
}

ModelWeights random_model(uint64_t seed, int head_dim = 24, float amp = 0.3f, int hidden = 172) {
  std::mt19937_64 rng(seed);
  ModelWeights w;
  auto& c = w.config;
  c.name = "random-gqa";
  c.dim = 96;
  c.hidden_dim = hidden;  // 172 by default, not a multiple of 8: SwiGLU's scalar path
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = head_dim;
  c.vocab_size = 300;
  c.max_seq_len = 256;
  const int64_t d = c.dim, q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim, h = c.hidden_dim;
  const float a = amp;
  w.tok_embeddings = make_tensor(w, {c.vocab_size, d}, rng, -1, 1);
  for (int l = 0; l < c.n_layers; ++l) {
    ModelWeights::Layer L;
    L.attn_norm = make_tensor(w, {d}, rng, 0.8f, 1.2f);
    L.wq = make_tensor(w, {q, d}, rng, -a, a);
    L.wk = make_tensor(w, {kv, d}, rng, -a, a);
    L.wv = make_tensor(w, {kv, d}, rng, -a, a);
    L.wo = make_tensor(w, {d, q}, rng, -a, a);
    L.ffn_norm = make_tensor(w, {d}, rng, 0.8f, 1.2f);
    L.w_gate = make_tensor(w, {h, d}, rng, -a, a);
    L.w_up = make_tensor(w, {h, d}, rng, -a, a);
    L.w_down = make_tensor(w, {d, h}, rng, -a, a);
    w.layers.push_back(L);
  }
  w.final_norm = make_tensor(w, {d}, rng, 0.8f, 1.2f);
  w.lm_head = make_tensor(w, {c.vocab_size, d}, rng, -a, a);
  return w;
}

/// Float64 logits of the last position of `tokens` (engine::reference::llama_f64_logits: a full causal
/// recompute, no cache). With `bf16_points`, values are rounded to bf16 where the CUDA backend's bf16 mode
/// stores bf16 (reference::kCudaBf16): norm outputs, q and k after RoPE, v, the attention output, the
/// gate/up GEMM outputs and the SwiGLU output. The QKV GEMM output (before RoPE), the O and down GEMM outputs
/// (added to the f32 residual) and the logits stay f32 there. What remains between the two is accumulation
/// order, so a wrong index or a missed term stands out far above it.
std::vector<double> reference_logits(const ModelWeights& w, const std::vector<int32_t>& tokens,
                                     bool bf16_points = false) {
  namespace ref = engine::reference;
  return ref::llama_f64_logits(w, tokens, int(tokens.size()) - 1, bf16_points ? ref::kCudaBf16 : 0u)[0];
}

engine::EngineConfig cuda_config(int block_size, const std::string& dtype = "auto", bool fp8_kv = false) {
  engine::EngineConfig cfg;
  cfg.backend = engine::BackendKind::kCuda;
  cfg.dtype = engine::parse_compute_dtype(dtype, "dtype");
  if (fp8_kv) cfg.kv_cache_dtype = engine::KvCacheDType::kFp8;
  cfg.max_num_seqs = 8;
  cfg.max_num_batched_tokens = 64;
  cfg.block_size = block_size;
  return cfg;
}

/// Runs the random model through prefill, chunked prefill mixed with a decode, graph-captured and replayed
/// decodes and a padded batch of 3, with the CUDA backend in `dtype`; calls check(step, seq, logits row) for
/// every row of logits. Every step runs again through forward_argmax, whose ids must be the rows' argmax.
void run_random_model(const ModelWeights& w, const std::string& dtype,
                      const std::function<void(size_t, int, const std::vector<float>&, const std::vector<int32_t>&)>&
                          check,
                      bool fp8_kv = false) {
  const int bs = 7;  // odd block size: positions straddle blocks
  auto be = engine::make_backend(cuda_config(bs, dtype, fp8_kv));
  be->load(w);
  EXPECT_EQ(be->dtype(), dtype == "f32" ? "f32" : "bf16");
  // fp8: a byte per element and a float scale per (token, kv head), for K and for V.
  const int64_t row_bytes = fp8_kv ? w.config.head_dim + 4 : w.config.head_dim * (dtype == "f32" ? 4 : 2);
  EXPECT_EQ(be->kv_bytes_per_token(), 2 * w.config.n_layers * w.config.n_kv_heads * row_bytes);
  be->allocate_kv_cache(64, bs);
  std::mt19937_64 rng(8);
  SeqPlan plan(64, bs, rng);
  const int A = plan.add(random_tokens(20, 300, rng)), B = plan.add(random_tokens(9, 300, rng));
  std::vector<std::vector<std::pair<int, int>>> steps = {
      {{A, 20}, {B, 5}},   // prefill A, first chunk of B (no logits for B)
      {{A, 1}, {B, 4}},    // decode A mixed with the rest of B
      {{A, 1}, {B, 1}},    // decode-only: graph capture (batch 2)
      {{A, 1}, {B, 1}},    // graph replay
  };
  const int C = plan.add(random_tokens(3, 300, rng));
  steps.push_back({{A, 1}, {B, 1}, {C, 3}});
  steps.push_back({{A, 1}, {B, 1}, {C, 1}});  // batch 3 padded to 4
  for (size_t si = 0; si < steps.size(); ++si) {
    const engine::StepBatch batch = plan.step(steps[si]);
    std::vector<float> logits(size_t(batch.num_logits()) * 300);
    std::vector<int32_t> ids(batch.num_logits());
    be->forward(batch, logits.data());
    int r = 0;
    for (const auto& [s, n] : steps[si]) {
      if (!plan.wants_logits(s, n)) continue;
      const std::vector<float> row(logits.begin() + size_t(r) * 300, logits.begin() + size_t(r + 1) * 300);
      check(si, s, row, plan.context(s));
      ++r;
    }
    // The same step again through forward_argmax (graph replay for decode steps): same ids as the logits.
    // Re-running a step rewrites the same K/V into the same slots, so the cache is unchanged.
    be->forward_argmax(plan.step(steps[si]), ids.data());
    for (int i = 0; i < batch.num_logits(); ++i) {
      const float* row = logits.data() + size_t(i) * 300;
      EXPECT_EQ(ids[i], int(std::max_element(row, row + 300) - row)) << dtype << " step " << si << " row " << i;
    }
    plan.commit(steps[si], ids);
  }
}

TEST(CudaBackend, RandomModelMatchesFloat64Reference) {
  SKIP_WITHOUT_DEVICE();
  const ModelWeights w = random_model(7);
  int exact_rows = 0, rows_checked = 0;
  run_random_model(w, "auto", [&](size_t si, int s, const std::vector<float>& row, const std::vector<int32_t>& ctx) {
    // Against float64 with the backend's bf16 rounding points: only accumulation order differs.
    const double e_emul = rel_err(row, reference_logits(w, ctx, true));
    // Against pure float64: the cost of bf16 activations (reported; this random model has peaky softmax).
    const double e_f64 = rel_err(row, reference_logits(w, ctx, false));
    std::printf("bf16 step %zu seq %d: rel err vs bf16-point f64 %.2e, vs pure f64 %.2e\n", si, s, e_emul, e_f64);
    // When every bf16 rounding lands the same way the row matches to ~1e-7. But each row rests on ~1e3
    // rounded values per token of its context (all layers), and an f32 result within ~1e-7 of a bf16
    // rounding boundary flips by one ulp (which the softmax carries to 1-5e-3): a 25-token context has about
    // one such flip on average, a 4-token one rarely. Seen on H100s: 6 and 3 of 13 rows exact (which rows
    // flip depends on the cuBLAS kernel's order of sums). A wrong index, a missed term or a rounding point that
    // differs shows in every row, so two exact rows are proof enough.
    exact_rows += e_emul < 1e-5 ? 1 : 0;
    ++rows_checked;
    EXPECT_LT(e_emul, 1e-2) << "step " << si << " seq " << s;
    EXPECT_LT(e_f64, 5e-2) << "step " << si << " seq " << s;
  });
  EXPECT_GE(exact_rows, 2) << "rows without a boundary flip must match the bf16-point reference to ~1e-7";
}

// Batch 1, where the GEMV runs and the add+RMSNorm and SwiGLU kernels are folded into the GEMVs that read
// their outputs (gemv_rmsnorm, gemv_swiglu; hidden 176 so that the SwiGLU one applies too): one sequence
// through a prompt, then single-token steps, eager and graph-replayed, with the fusions on and off
// (LLM_CUDA_FUSE_NORM / LLM_CUDA_FUSE_SWIGLU). Each row against the bf16-point float64 reference as above, and
// the fused rows against the unfused ones on the same tokens.
TEST(CudaBackend, BatchOneFusedGemvsMatchUnfusedAndFloat64) {
  SKIP_WITHOUT_DEVICE();
  const ModelWeights w = random_model(17, 24, 0.3f, 176);
  struct Variant { const char* fuse; const char* graphs; };
  const Variant variants[] = {{"1", "1"}, {"0", "1"}, {"1", "0"}};
  std::vector<std::vector<std::vector<float>>> rows(3);
  std::vector<std::vector<std::vector<int32_t>>> ctxs(3);
  for (int v = 0; v < 3; ++v) {
    setenv("LLM_CUDA_FUSE_NORM", variants[v].fuse, 1);
    setenv("LLM_CUDA_FUSE_SWIGLU", variants[v].fuse, 1);
    setenv("LLM_CUDA_GRAPHS", variants[v].graphs, 1);
    auto be = engine::make_backend(cuda_config(7));
    be->load(w);
    be->allocate_kv_cache(64, 7);
    std::mt19937_64 rng(23);
    SeqPlan plan(64, 7, rng);
    const int A = plan.add(random_tokens(12, 300, rng));
    std::vector<std::vector<std::pair<int, int>>> steps = {{{A, 11}}, {{A, 1}}};  // the last prompt token alone
    for (int i = 0; i < 6; ++i) steps.push_back({{A, 1}});
    for (size_t si = 0; si < steps.size(); ++si) {
      const engine::StepBatch batch = plan.step(steps[si]);
      std::vector<int32_t> ids(batch.num_logits());
      if (batch.num_logits() > 0) {
        std::vector<float> logits(300);
        be->forward(batch, logits.data());
        const double e = rel_err(logits, reference_logits(w, plan.context(A), true));
        std::printf("batch 1, fuse %s graphs %s, step %zu: rel err vs bf16-point f64 %.2e\n", variants[v].fuse,
                    variants[v].graphs, si, e);
        EXPECT_LT(e, 1e-2) << "fuse " << variants[v].fuse << " graphs " << variants[v].graphs << " step " << si;
        rows[v].push_back(logits);
        ctxs[v].push_back(plan.context(A));
      }
      be->forward_argmax(plan.step(steps[si]), ids.data());
      if (!rows[v].empty() && batch.num_logits() > 0) {
        const auto& row = rows[v].back();
        EXPECT_EQ(ids[0], int(std::max_element(row.begin(), row.end()) - row.begin())) << "step " << si;
      }
      plan.commit(steps[si], ids);
    }
  }
  unsetenv("LLM_CUDA_FUSE_NORM");
  unsetenv("LLM_CUDA_FUSE_SWIGLU");
  unsetenv("LLM_CUDA_GRAPHS");
  // Fused against unfused, and graph replay against eager, on the same contexts.
  for (int v : {1, 2}) {
    ASSERT_EQ(rows[v].size(), rows[0].size());
    for (size_t i = 0; i < rows[0].size(); ++i) {
      if (ctxs[v][i] != ctxs[0][i]) break;  // a different argmax: the contexts part
      std::vector<double> ref(rows[v][i].begin(), rows[v][i].end());
      const double e = rel_err(rows[0][i], ref);
      std::printf("batch 1, fused+graphs vs variant %d, row %zu: rel diff %.2e\n", v, i, e);
      EXPECT_LT(e, 1e-2) << "variant " << v << " row " << i;
      if (v == 2) {
        EXPECT_EQ(rows[0][i], rows[v][i]) << "graph replay and eager run the same kernels: row " << i;
      }
    }
  }
}

// LLM_CUDA_GRAPHS_AT_LOAD=1: every decode graph captured on padding rows when the KV cache is allocated. The
// graphs a run then replays must be the ones it would have captured itself: the same logits, bit for bit, over
// prefill, mixed, decode (batch 2) and padded (3 -> 4) steps, against graphs captured by the steps themselves.
TEST(CudaBackend, DecodeGraphsCapturedAtLoadGiveTheSameLogits) {
  SKIP_WITHOUT_DEVICE();
  const ModelWeights w = random_model(29);
  std::vector<std::vector<float>> rows[2];
  for (int at_load = 0; at_load < 2; ++at_load) {
    setenv("LLM_CUDA_GRAPHS_AT_LOAD", at_load ? "1" : "0", 1);
    run_random_model(w, "auto", [&](size_t, int, const std::vector<float>& row, const std::vector<int32_t>&) {
      rows[at_load].push_back(row);
    });
  }
  unsetenv("LLM_CUDA_GRAPHS_AT_LOAD");
  ASSERT_EQ(rows[0].size(), rows[1].size());
  ASSERT_FALSE(rows[0].empty());
  for (size_t i = 0; i < rows[0].size(); ++i) EXPECT_EQ(rows[0][i], rows[1][i]) << "logits row " << i;
}

TEST(CudaBackend, RandomModelFloat32MatchesFloat64) {
  SKIP_WITHOUT_DEVICE();
  const ModelWeights w = random_model(7);
  double worst = 0;
  run_random_model(w, "f32", [&](size_t si, int s, const std::vector<float>& row, const std::vector<int32_t>& ctx) {
    // Everything in f32 (weights exact: they are bf16 values): only f32 accumulation order and fast-math
    // intrinsics against float64, ~1e-6 per row. bf16 rounding anywhere would show as ~1e-2.
    const double e = rel_err(row, reference_logits(w, ctx, false));
    std::printf("f32 step %zu seq %d: rel err vs pure f64 %.2e\n", si, s, e);
    worst = std::max(worst, e);
    EXPECT_LT(e, 1e-4) << "step " << si << " seq " << s;
  });
  std::printf("f32 mode: worst row rel err vs float64 %.2e\n", worst);
}

// The whole pass with an fp8 KV cache, at head dim 64 (version 2's kernel) and 24 (the paged kernel's fp8
// path, as tiny-llama has); prompt tokens go through the same kernel: against pure float64, the cost of e4m3
// K/V on top of bf16 (reported), and the same argmax as the bf16 cache on most rows.
TEST(CudaBackend, RandomModelFp8KvCacheNearFloat64) {
  SKIP_WITHOUT_DEVICE();
  for (int hd : {64, 24}) {
    // Weights of +-0.1 (not 0.3): scores of a few units, as trained models have, where e4m3's 3 mantissa bits
    // move the softmax by percents; with +-0.3 the random model's scores run to tens and any K error flips it.
    const ModelWeights w = random_model(9, hd, 0.1f);
    std::vector<std::vector<float>> bf16_rows, fp8_rows;
    std::vector<std::vector<int32_t>> contexts;
    run_random_model(w, "auto", [&](size_t, int, const std::vector<float>& row, const std::vector<int32_t>& ctx) {
      bf16_rows.push_back(row);
      contexts.push_back(ctx);
    });
    run_random_model(
        w, "auto",
        [&](size_t, int, const std::vector<float>& row, const std::vector<int32_t>&) { fp8_rows.push_back(row); },
        true);
    ASSERT_EQ(fp8_rows.size(), bf16_rows.size());
    int same_top1 = 0;
    for (size_t i = 0; i < fp8_rows.size(); ++i) {
      const std::vector<double> ref = reference_logits(w, contexts[i], false);
      const double e_fp8 = rel_err(fp8_rows[i], ref), e_bf16 = rel_err(bf16_rows[i], ref);
      std::printf("hd %d fp8 kv row %zu: rel err vs pure f64 %.2e (bf16 kv %.2e)\n", hd, i, e_fp8, e_bf16);
      EXPECT_LT(e_fp8, 1e-1) << "hd " << hd << " row " << i;
      const auto top = [](const std::vector<float>& r) { return std::max_element(r.begin(), r.end()) - r.begin(); };
      same_top1 += top(fp8_rows[i]) == top(bf16_rows[i]);
    }
    EXPECT_GE(same_top1, int(fp8_rows.size()) - 2)
        << "hd " << hd << ": " << same_top1 << " of " << fp8_rows.size() << " rows agree";
  }
}

TEST(CudaBackend, RejectsUnknownDtype) {
  SKIP_WITHOUT_DEVICE();
  // An unknown dtype never reaches the backend: it is an enum, parsed from the option's text.
  try {
    engine::parse_compute_dtype("f16", "--dtype");
    FAIL() << "dtype f16 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--dtype"), std::string::npos) << e.what();
  }
  // An fp8 KV cache needs the bf16 mode.
  EXPECT_THROW(engine::make_backend(cuda_config(16, "f32", true)), engine::ModelLoadError);
}

TEST(CudaBackend, TinyLlamaMatchesCpuBackend) {
  SKIP_WITHOUT_DEVICE();
  REQUIRE_SHARED("models/tiny-llama");
  const ModelWeights w = engine::load_model(testing_paths::shared("models/tiny-llama").string());
  const CompareStats st = compare_with_cpu(w, {13, 30, 7, 61}, 6, 16, 11);
  std::printf("tiny-llama cuda (bf16) vs cpu: %d rows, max row rel err %.3e, max|diff| %.4g, allclose(2e-2) %.5f of "
              "elements, top-1 %d/%d\n", st.rows, st.max_row_rel, st.max_abs, st.frac_close, st.top1_agree, st.rows);
  // bf16 activations vs the CPU's f32: a few percent per row on this model (3.2e-2 seen on an H100). Its
  // large weights (std 0.15) make peaky softmaxes that amplify rounding: on the shared reference file,
  // transformers itself in bf16 is 8.9e-2 off per row (bench/gpu/hf_bf16_yardstick.py). The kernels
  // themselves match float64 at the same rounding points (RandomModelMatchesFloat64Reference).
  EXPECT_LT(st.max_row_rel, 5e-2);
  EXPECT_GE(st.top1_agree, st.rows - 1);
}

TEST(CudaBackend, TinyLlamaFloat32MatchesCpuBackend) {
  SKIP_WITHOUT_DEVICE();
  REQUIRE_SHARED("models/tiny-llama");
  const ModelWeights w = engine::load_model(testing_paths::shared("models/tiny-llama").string());
  const CompareStats st = compare_with_cpu(w, {13, 30, 7, 61}, 6, 16, 11, "f32", 1e-4);
  std::printf("tiny-llama cuda (f32) vs cpu: %d rows, max row rel err %.3e, max|diff| %.4g, allclose(1e-4) %.5f of "
              "elements, top-1 %d/%d\n", st.rows, st.max_row_rel, st.max_abs, st.frac_close, st.top1_agree, st.rows);
  // Both sides f32 with the same weights: only summation order differs (~1e-6 relative), so every element
  // must sit within acc_allclose at 1e-4 and every row's argmax must agree.
  EXPECT_EQ(st.frac_close, 1.0);
  EXPECT_EQ(st.top1_agree, st.rows);
}

TEST(CudaBackend, Llama7BDummyMatchesCpuBackend) {
  SKIP_WITHOUT_DEVICE();
  const char* on = std::getenv("LLM_CUDA_TEST_7B");
  if (!on || std::string(on) != "1") GTEST_SKIP() << "set LLM_CUDA_TEST_7B=1 (needs ~45 GB host memory)";
  const ModelWeights w = engine::load_model("dummy:llama-2-7b", 0);
  const CompareStats st = compare_with_cpu(w, {12, 40, 5}, 3, 16, 12);
  std::printf("dummy:llama-2-7b cuda (bf16) vs cpu: %d rows, max row rel err %.3e, max|diff| %.4g, allclose(2e-2) %.5f "
              "of elements, top-1 %d/%d\n", st.rows, st.max_row_rel, st.max_abs, st.frac_close, st.top1_agree, st.rows);
  EXPECT_LT(st.max_row_rel, 5e-2);
  EXPECT_GE(st.top1_agree, st.rows * 3 / 4);

  // The f32 mode: 27 GB of f32 weights on the GPU (the bf16 backend is gone by now), ~27 GB f32 on the host
  // for the CPU backend. Same tight check as tiny-llama.
  size_t free_b = 0, total_b = 0;
  CK(cudaMemGetInfo(&free_b, &total_b));
  const double need = 4.0 * double(w.config.num_params()) + (2ll << 30);
  if (double(free_b) < need) {
    std::printf("dummy:llama-2-7b f32 mode skipped: %.1f GB free on the device, %.1f GB needed\n", free_b / 1e9,
                need / 1e9);
    return;
  }
  const CompareStats s32 = compare_with_cpu(w, {12, 40, 5}, 3, 16, 12, "f32", 1e-4);
  std::printf("dummy:llama-2-7b cuda (f32) vs cpu: %d rows, max row rel err %.3e, max|diff| %.4g, allclose(1e-4) "
              "%.5f of elements, top-1 %d/%d\n", s32.rows, s32.max_row_rel, s32.max_abs, s32.frac_close,
              s32.top1_agree, s32.rows);
  EXPECT_EQ(s32.frac_close, 1.0);
  EXPECT_EQ(s32.top1_agree, s32.rows);
}

}  // namespace

#else
TEST(CudaBackend, SkippedWithoutCudaBuild) { GTEST_SKIP() << "built without LLM_ENABLE_CUDA"; }
#endif
