// One decode step of the CPU backend: B sequences, one new token each, ~128 tokens of context already in the
// paged cache, on dummy:tiny and dummy:llama-100m. items_per_second = generated tokens/s (B per step) over
// wall time; the CPU column is the whole process's CPU time per step (all threads), which stays meaningful
// when the machine is shared.
//
// The cache is not prefilled: each sequence owns its own 9 blocks of the (zeroed) pool and the step reads
// positions 0..128 from them. Attention's cost does not depend on the K/V values (no data-dependent branches),
// and skipping 64 x 128-token prefills keeps the setup short on a small machine.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "model/model.h"

namespace {

constexpr int kContext = 128;   // tokens already cached per sequence
constexpr int kBlockSize = 16;
constexpr int kMaxBatch = 64;

struct Loaded {
  std::unique_ptr<engine::Backend> backend;
  int vocab = 0;
};

/// One backend per model for the whole run (loading llama-100m takes seconds).
Loaded& backend_for(const std::string& model) {
  static std::map<std::string, Loaded> cache;
  auto it = cache.find(model);
  if (it != cache.end()) return it->second;
  Loaded l;
  engine::EngineConfig cfg;
  cfg.model = model;
  l.backend = engine::make_backend(cfg);
  {
    const engine::ModelWeights w = engine::load_model(model, 0);
    l.vocab = w.config.vocab_size;
    l.backend->load(w);
  }
  const int blocks_per_seq = (kContext + 1 + kBlockSize - 1) / kBlockSize;
  l.backend->allocate_kv_cache(int64_t(kMaxBatch) * blocks_per_seq, kBlockSize);
  return cache.emplace(model, std::move(l)).first->second;
}

void BM_DecodeStep(benchmark::State& state, const std::string& model) {
  const int B = int(state.range(0));
  Loaded& l = backend_for(model);
  const int blocks_per_seq = (kContext + 1 + kBlockSize - 1) / kBlockSize;
  engine::StepBatch b;
  for (int s = 0; s < B; ++s) {
    b.tokens.push_back(3 + (s * 37) % (l.vocab - 3));
    b.positions.push_back(kContext);
    engine::SeqSlice sl;
    sl.query_start = s;
    sl.query_len = 1;
    sl.context_len = kContext + 1;
    sl.block_table_start = s * blocks_per_seq;
    sl.num_blocks = blocks_per_seq;
    sl.want_logits = true;
    b.seqs.push_back(sl);
    // Interleave the sequences' blocks across the pool, as a busy block manager would.
    for (int k = 0; k < blocks_per_seq; ++k) b.block_tables.push_back(k * kMaxBatch + s);
  }
  std::vector<float> logits(size_t(B) * l.vocab);
  l.backend->forward(b, logits.data());  // warm-up: scratch buffers sized, pages touched
  for (auto _ : state) {
    l.backend->forward(b, logits.data());
    benchmark::DoNotOptimize(logits.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * B);
  state.counters["batch"] = B;
}

BENCHMARK_CAPTURE(BM_DecodeStep, tiny, std::string("dummy:tiny"))
    ->ArgName("B")->Arg(1)->Arg(8)->Arg(32)->Arg(64)->UseRealTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_DecodeStep, llama_100m, std::string("dummy:llama-100m"))
    ->ArgName("B")->Arg(1)->Arg(8)->Arg(32)->Arg(64)->UseRealTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
