// Scheduler overhead per step without a model: schedule() + postprocess() with `range(0)` running
// sequences decoding (and, in the second benchmark, new prompts arriving and being chunk-prefilled).
// The point of comparison is a forward pass: this must stay far below it.
#include <benchmark/benchmark.h>

#include "scheduler/scheduler.h"

namespace {

using namespace engine;

std::unique_ptr<Sequence> make_seq(uint64_t id, int prompt_len, int max_new) {
  auto s = std::make_unique<Sequence>();
  s->id = id;
  s->prompt_tokens.assign(prompt_len, 5);
  s->sampling.max_new_tokens = max_new;
  s->sampling.ignore_eos = true;
  return s;
}

// Steady decoding: every step schedules all running sequences for one token.
void BM_DecodeStep(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  SchedulerConfig cfg;
  cfg.max_num_seqs = n;
  cfg.max_num_batched_tokens = 8192;
  cfg.num_kv_blocks = int64_t(n) * 256;  // 4096 tokens each: recycled (below) before max_new_tokens
  cfg.block_size = 16;
  Scheduler sched(cfg);
  uint64_t next = 0;
  for (int i = 0; i < n; ++i) sched.add(make_seq(next++, 64, 4090 - 64));
  std::vector<int32_t> toks;
  for (auto _ : state) {
    ScheduledBatch b = sched.schedule();
    toks.assign(b.seqs.size(), 7);
    sched.postprocess(b, toks);
    if (sched.block_manager().num_free_blocks() < n || !sched.has_unfinished()) {  // recycle: never run dry
      state.PauseTiming();
      for (Sequence* s : sched.unfinished()) sched.finish(s, FinishReason::kLength);
      sched.take_finished();
      for (int i = 0; i < n; ++i) sched.add(make_seq(next++, 64, 4090 - 64));
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_DecodeStep)->Arg(1)->Arg(8)->Arg(64)->Arg(256);

// Churn: short requests finish and new ones arrive every step, with chunked prefill mixed in.
void BM_ChurnStep(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  SchedulerConfig cfg;
  cfg.max_num_seqs = n;
  cfg.max_num_batched_tokens = 2048;
  cfg.num_kv_blocks = int64_t(n) * 64;
  cfg.block_size = 16;
  Scheduler sched(cfg);
  uint64_t next = 0;
  std::vector<int32_t> toks;
  for (auto _ : state) {
    while (sched.num_waiting() < 4) sched.add(make_seq(next, 100 + int(next % 300), 8 + int(next % 50))), next++;
    ScheduledBatch b = sched.schedule();
    toks.assign(b.seqs.size(), 7);
    sched.postprocess(b, toks);
    sched.take_finished();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ChurnStep)->Arg(8)->Arg(64)->Arg(256);

}  // namespace

BENCHMARK_MAIN();
