// Decode-step time of the CUDA backend next to its floor (weight bytes + KV bytes read per step over the
// measured device copy bandwidth). Model: LLM_BENCH_MODEL (default dummy:llama-2-7b); every sequence has
// LLM_BENCH_CONTEXT (default 300) tokens in the cache, filled with random values. One step = one
// forward_argmax (graph replay after the first step of each batch size), timed on the host around a call
// that ends with the token ids on the host. Also prints per-stage event timings of one eager step.
// LLM_BENCH_DTYPE (default auto = bf16; f32 times the f32 reference mode: twice the bytes per weight and
// KV value, plain f32 GEMMs). LLM_BENCH_DETERMINISTIC=1 times the batch-invariant mode (fixed-row GEMMs,
// unsplit attention). LLM_BENCH_KERNEL_TRACE=PREFIX: the whole run under a CUPTI kernel trace (kernel_trace.h;
// its timings are then traced ones), and after the timed steps of each batch the records of
// LLM_BENCH_TRACE_STEPS (default 30) more steps written to PREFIX_b<batch>.csv for bench/gpu/graph_trace.py
// (each kernel's duration and the gap before it inside the graph).
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "bench/gpu/kernel_trace.h"
#include "model/model.h"

namespace {

constexpr int kMaxBatch = 256;
constexpr int kBlock = 16;

int context_len() {
  const char* c = std::getenv("LLM_BENCH_CONTEXT");
  return c ? std::atoi(c) : 300;
}

struct Fixture {
  engine::ModelConfig mc;
  std::unique_ptr<engine::Backend> be;
  double copy_gbps = 0;          // device copy bandwidth, bytes read + written per second / 1e9
  double weight_bytes = 0;       // matrices read by one decode step (all layers + lm_head)
  int blocks_per_seq = 0;
  int max_seqs = 0;              // sequences whose KV fits (kMaxBatch in bf16; fewer for a 7B model in f32)
  std::string trace_prefix;      // LLM_BENCH_KERNEL_TRACE; empty: no trace
  int trace_steps = 30;          // LLM_BENCH_TRACE_STEPS

  Fixture() {
    // Traced runs record from before the backend exists (its graphs included); every step of such a run is
    // traced, its timings too.
    if (const char* p = std::getenv("LLM_BENCH_KERNEL_TRACE")) {
      trace_prefix = p;
      if (const char* n = std::getenv("LLM_BENCH_TRACE_STEPS")) trace_steps = std::max(1, std::atoi(n));
      gpu_bench::kernel_trace_start();
    }
    const char* m = std::getenv("LLM_BENCH_MODEL");
    engine::ModelWeights w = engine::load_model(m ? m : "dummy:llama-2-7b", 0);
    mc = w.config;
    engine::EngineConfig cfg;
    cfg.backend = engine::BackendKind::kCuda;
    if (const char* d = std::getenv("LLM_BENCH_DTYPE")) cfg.dtype = engine::parse_compute_dtype(d, "LLM_BENCH_DTYPE");
    if (const char* d = std::getenv("LLM_BENCH_DETERMINISTIC")) cfg.deterministic = std::string(d) == "1";
    if (const char* d = std::getenv("LLM_BENCH_KV_DTYPE"))
      cfg.kv_cache_dtype = engine::parse_kv_cache_dtype(d, "LLM_BENCH_KV_DTYPE");
    cfg.max_num_seqs = kMaxBatch;
    cfg.max_num_batched_tokens = 2048;
    cfg.block_size = kBlock;
    be = engine::make_backend(cfg);
    be->load(w);
    blocks_per_seq = (context_len() + 1 + kBlock - 1) / kBlock;
    // Every sequence owns blocks_per_seq blocks; in f32 the 7B model's KV for 256 sequences (78 GB) does not
    // fit next to its 27 GB of weights, so the pool holds as many sequences as the device has room for and
    // larger batches are skipped.
    const int64_t seq_bytes = int64_t(blocks_per_seq) * kBlock * be->kv_bytes_per_token();
    max_seqs = int(std::min<int64_t>(kMaxBatch, (be->default_kv_budget_bytes() - seq_bytes) / seq_bytes));
    if (max_seqs < 1) {
      std::fprintf(stderr, "cuda_decode_bench: no room for the KV cache of one sequence\n");
      std::exit(1);
    }
    be->allocate_kv_cache(int64_t(max_seqs) * blocks_per_seq + 1, kBlock);
    engine::cuda_fill_kv_cache(*be, 1.0f, 42);
    const double d = mc.dim, q = double(mc.n_heads) * mc.head_dim, kv = double(mc.n_kv_heads) * mc.head_dim;
    const double elem = be->dtype() == "f32" ? 4.0 : 2.0;
    weight_bytes = elem * (mc.n_layers * ((q + 2 * kv) * d + d * q + 3.0 * mc.hidden_dim * d) + double(mc.vocab_size) * d);
    copy_gbps = measure_copy();
  }

  static double measure_copy() {
    const size_t bytes = size_t(2) << 30;
    void *a = nullptr, *b = nullptr;
    if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) std::abort();
    cudaMemset(a, 1, bytes);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);  // warm-up
    const int reps = 10;
    cudaEventRecord(e0);
    for (int i = 0; i < reps; ++i) cudaMemcpy(i % 2 ? a : b, i % 2 ? b : a, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    cudaFree(a);
    cudaFree(b);
    return 2.0 * bytes * reps / (ms * 1e-3) / 1e9;
  }

  /// B sequences, each at position context-1 with its own contiguous run of blocks.
  engine::StepBatch decode_batch(int B) const {
    engine::StepBatch b;
    const int ctx = context_len();
    for (int i = 0; i < B; ++i) {
      engine::SeqSlice s;
      s.query_start = i;
      s.query_len = 1;
      s.context_len = ctx;
      s.block_table_start = int(b.block_tables.size());
      s.num_blocks = (ctx + kBlock - 1) / kBlock;
      s.want_logits = true;
      for (int k = 0; k < s.num_blocks; ++k) b.block_tables.push_back(i * blocks_per_seq + k);
      b.tokens.push_back(int32_t((i * 7919) % mc.vocab_size));
      b.positions.push_back(ctx - 1);
      b.seqs.push_back(s);
    }
    return b;
  }
};

Fixture& fx() {
  static Fixture f;
  return f;
}

void BM_DecodeStep(benchmark::State& state) {
  Fixture& f = fx();
  const int B = int(state.range(0));
  if (B > f.max_seqs) {
    state.SkipWithError(("KV cache of " + std::to_string(B) + " sequences does not fit (" + f.be->dtype() + ")").c_str());
    return;
  }
  const engine::StepBatch batch = f.decode_batch(B);
  std::vector<int32_t> ids(B);
  for (int i = 0; i < 3; ++i) f.be->forward_argmax(batch, ids.data());  // capture + warm-up
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    f.be->forward_argmax(batch, ids.data());
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const double kv_bytes = double(B) * context_len() * f.be->kv_bytes_per_token();
  const double floor_ms = (f.weight_bytes + kv_bytes) / (f.copy_gbps * 1e9) * 1e3;
  state.counters["batch"] = B;
  state.counters["floor_ms"] = floor_ms;
  state.counters["copy_GBps"] = f.copy_gbps;
  state.counters["GB_per_step"] = (f.weight_bytes + kv_bytes) / 1e9;
  state.counters["tok_per_s"] = benchmark::Counter(B, benchmark::Counter::kIsIterationInvariantRate);

  if (!f.trace_prefix.empty()) {
    const int steps = f.trace_steps;
    gpu_bench::kernel_trace_clear();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) f.be->forward_argmax(batch, ids.data());
    const double traced_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / steps;
    const auto recs = gpu_bench::kernel_trace_take();
    const std::string path = f.trace_prefix + "_b" + std::to_string(B) + ".csv";
    gpu_bench::write_kernel_trace_csv(recs, path);
    std::fprintf(stderr, "kernel trace batch %d: %zu kernels over %d steps in %s; %.3f ms a step while traced\n", B,
                 recs.size(), steps, path.c_str(), traced_ms);
  }

  // One eager step with events between stages: where the time goes.
  const auto stages = engine::cuda_profile_forward(*f.be, batch);
  double total = 0;
  for (const auto& [n, ms] : stages) total += ms;
  std::fprintf(stderr, "profile batch %d (eager, events): total %.3f ms |", B, total);
  for (const auto& [n, ms] : stages) std::fprintf(stderr, " %s %.3f", n.c_str(), ms);
  std::fprintf(stderr, "\n");
}
BENCHMARK(BM_DecodeStep)->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Arg(16)->Arg(64)->Arg(128)->Arg(256)->UseManualTime()->Unit(benchmark::kMillisecond)
    ->MinTime(1.0);

// A step like the offline run's steady state: 192 decodes at 120-token contexts plus 28 prompts of 65
// tokens prefilled in the same step (2,012 tokens, eager path). GEMM work dominates: tflops says how well.
void BM_MixedStep(benchmark::State& state) {
  Fixture& f = fx();
  const int n_dec = 192, dec_ctx = 120, n_pre = 28, pre_len = 65;
  if (n_dec + n_pre > f.max_seqs) {
    state.SkipWithError("KV cache of 220 sequences does not fit");
    return;
  }
  engine::StepBatch b;
  auto add = [&](int seq, int ctx, int qlen) {
    engine::SeqSlice s;
    s.query_start = b.num_tokens();
    s.query_len = qlen;
    s.context_len = ctx;
    s.block_table_start = int(b.block_tables.size());
    s.num_blocks = (ctx + kBlock - 1) / kBlock;
    s.want_logits = true;
    for (int k = 0; k < s.num_blocks; ++k) b.block_tables.push_back(seq * f.blocks_per_seq + k);
    for (int j = 0; j < qlen; ++j) {
      b.tokens.push_back(int32_t((seq * 131 + j * 7) % f.mc.vocab_size));
      b.positions.push_back(ctx - qlen + j);
    }
    b.seqs.push_back(s);
  };
  for (int i = 0; i < n_dec; ++i) add(i, dec_ctx, 1);
  for (int j = 0; j < n_pre; ++j) add(n_dec + j, pre_len, pre_len);
  std::vector<int32_t> ids(b.seqs.size());
  f.be->forward_argmax(b, ids.data());
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    f.be->forward_argmax(b, ids.data());
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const double elem = f.be->dtype() == "f32" ? 4.0 : 2.0;
  const double params = f.weight_bytes / elem - double(f.mc.vocab_size) * f.mc.dim;  // matrices but lm_head
  state.counters["tokens"] = b.num_tokens();
  state.counters["gemm_tflop"] = 2.0 * params * b.num_tokens() / 1e12;
  const auto stages = engine::cuda_profile_forward(*f.be, b);
  double total = 0;
  for (const auto& [n, ms] : stages) total += ms;
  std::fprintf(stderr, "profile mixed step (%d tokens, eager, events): total %.3f ms |", b.num_tokens(), total);
  for (const auto& [n, ms] : stages) std::fprintf(stderr, " %s %.3f", n.c_str(), ms);
  std::fprintf(stderr, "\n");
}
BENCHMARK(BM_MixedStep)->UseManualTime()->Unit(benchmark::kMillisecond);

// Prefill of one prompt (eager path, no graph): the cost behind TTFT.
void BM_PrefillStep(benchmark::State& state) {
  Fixture& f = fx();
  const int L = int(state.range(0));
  engine::StepBatch b;
  engine::SeqSlice s;
  s.query_len = L;
  s.context_len = L;
  s.num_blocks = (L + kBlock - 1) / kBlock;
  s.want_logits = true;
  for (int k = 0; k < s.num_blocks; ++k) b.block_tables.push_back(k);
  for (int j = 0; j < L; ++j) {
    b.tokens.push_back(int32_t((j * 31 + 5) % f.mc.vocab_size));
    b.positions.push_back(j);
  }
  b.seqs.push_back(s);
  int32_t id = 0;
  f.be->forward_argmax(b, &id);
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    f.be->forward_argmax(b, &id);
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  state.counters["tokens"] = L;
}
BENCHMARK(BM_PrefillStep)->Arg(64)->Arg(256)->Arg(1024)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
