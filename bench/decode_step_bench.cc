// One decode step of the CPU backend: B sequences, one new token each, ~128 tokens of context already in the
// paged cache, on dummy:tiny and dummy:llama-100m. items_per_second = generated tokens/s (B per step) over
// wall time; the CPU column is the whole process's CPU time per step (all threads), which stays meaningful
// when the machine is shared.
//
// Before timing, each of the 64 sequences gets its own 128-token prefill (in 512-token steps), so the step
// reads real K/V from memory: a cache that was never written would be read from the kernel's shared zero
// page, always in cache, and attention would look far cheaper than it is (at batch 64 the K/V read, 608 MB
// a step, outweighs the 438 MB of weights).
//
// Side by side with llama.cpp: given --llama-batched-bench=PATH and --llama-model=GGUF (the llama-100m shapes,
// made by make_gguf.py), the program runs `rounds` rounds, each one our llama-100m benchmarks and one
// llama-batched-bench run at the same batch sizes (prompt 128 tokens per sequence, not shared; S_TG over
// --llama-gen decode steps), the order alternating from round to round so both see the same machine load,
// then prints tokens/s per batch size for both: the median over the rounds and the range.
//   decode_step_bench --llama-batched-bench=PATH --llama-model=GGUF [--rounds=3] [--llama-gen=16]
//                     [--llama-threads=N (default: OpenMP's thread count)] [--llama-args="-fa"] [benchmark flags]
#include <benchmark/benchmark.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/packed_gemm.h"
#include "bench/llama_batched_bench.h"
#include "common/parse_number.h"
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
  std::fprintf(stderr, "%s: prefilling %d sequences of %d tokens\n", model.c_str(), kMaxBatch, kContext);
  constexpr int kSeqsPerStep = 4;
  for (int s0 = 0; s0 < kMaxBatch; s0 += kSeqsPerStep) {
    engine::StepBatch b;
    for (int s = s0; s < s0 + kSeqsPerStep; ++s) {
      engine::SeqSlice sl;
      sl.query_start = b.num_tokens();
      sl.query_len = kContext;
      sl.context_len = kContext;
      sl.block_table_start = int(b.block_tables.size());
      sl.num_blocks = blocks_per_seq;
      b.seqs.push_back(sl);
      for (int k = 0; k < blocks_per_seq; ++k) b.block_tables.push_back(k * kMaxBatch + s);
      for (int p = 0; p < kContext; ++p) {
        b.tokens.push_back(3 + (s * 131 + p * 7) % (l.vocab - 3));
        b.positions.push_back(p);
      }
    }
    l.backend->forward(b, nullptr);
  }
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
    // The sequences' blocks interleave across the pool, as a busy block manager's would (the prefill's layout).
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

constexpr int kBatches[] = {1, 8, 32, 64};

void batch_args(benchmark::internal::Benchmark* b) {
  b->ArgName("B");
  for (int B : kBatches) b->Arg(B);
  b->UseRealTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
}
BENCHMARK_CAPTURE(BM_DecodeStep, tiny, std::string("dummy:tiny"))->Apply(batch_args);
BENCHMARK_CAPTURE(BM_DecodeStep, llama_100m, std::string("dummy:llama-100m"))->Apply(batch_args);

// ---------------------------------------------------------------- side by side with llama.cpp

/// Prints as the console reporter does and keeps each run's tokens/s by batch size.
class Collector : public benchmark::ConsoleReporter {
 public:
  std::map<int, double> speeds;
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      auto b = r.counters.find("batch"), ips = r.counters.find("items_per_second");
      if (b != r.counters.end() && ips != r.counters.end()) speeds[int(b->second.value)] = ips->second.value;
    }
  }
};

struct Options {
  bench::LlamaBatchedBench llama;
  int rounds = 3;
};

/// Takes this program's own flags out of argv (leaving Google Benchmark's); false when no llama flag is given.
/// Exits with a message naming the flag on a bad value.
bool take_flags(int& argc, char** argv, Options& o) {
  auto fail = [](const std::string& msg) {
    std::fprintf(stderr, "decode_step_bench: %s\n", msg.c_str());
    std::exit(2);
  };
  auto count = [&](const std::string& flag, const std::string& v, int lo) {
    const auto d = common::parse_double(v);
    if (!d || *d != double(int(*d)) || int(*d) < lo)
      fail(flag + " wants a whole number >= " + std::to_string(lo) + ", got '" + v + "'");
    return int(*d);
  };
  bool any = false;
  o.llama.threads = omp_get_max_threads();
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto eq = a.find('=');
    const std::string name = a.substr(0, eq), value = eq == std::string::npos ? "" : a.substr(eq + 1);
    if (name == "--llama-batched-bench" || name == "--llama-model" || name == "--rounds" || name == "--llama-gen" ||
        name == "--llama-threads" || name == "--llama-args") {
      if (eq == std::string::npos) fail(name + " wants a value: " + name + "=...");
      if (name == "--llama-batched-bench") o.llama.binary = value, any = true;
      if (name == "--llama-model") o.llama.model = value, any = true;
      if (name == "--rounds") o.rounds = count(name, value, 1);
      if (name == "--llama-gen") o.llama.gen = count(name, value, 1);
      if (name == "--llama-threads") o.llama.threads = count(name, value, 1);
      if (name == "--llama-args") o.llama.extra_args = value;
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  if (!any) return false;
  if (o.llama.binary.empty() || o.llama.model.empty())
    fail("--llama-batched-bench and --llama-model go together (the llama.cpp binary and a GGUF of the llama-100m "
         "shapes)");
  if (access(o.llama.binary.c_str(), X_OK) != 0) fail("--llama-batched-bench: " + o.llama.binary + " is not an executable file");
  if (access(o.llama.model.c_str(), R_OK) != 0) fail("--llama-model: cannot read " + o.llama.model);
  return true;
}

struct Spread {
  double median = 0, lo = 0, hi = 0;
};
Spread spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return {n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v.front(), v.back()};
}

int side_by_side(const Options& o) {
  const std::vector<int> batches(std::begin(kBatches), std::end(kBatches));
  std::map<int, std::vector<double>> ours, theirs;
  std::printf("llama.cpp: %s\n", o.llama.command(batches).c_str());
  for (int round = 0; round < o.rounds; ++round) {
    for (int half = 0; half < 2; ++half) {
      if ((half == 0) == (round % 2 == 0)) {
        std::printf("round %d/%d: ours (dummy:llama-100m)\n", round + 1, o.rounds);
        std::fflush(stdout);
        Collector c;
        benchmark::RunSpecifiedBenchmarks(&c, "BM_DecodeStep/llama_100m/");
        for (int b : batches) ours[b].push_back(c.speeds.at(b));
      } else {
        std::printf("round %d/%d: llama.cpp\n", round + 1, o.rounds);
        std::fflush(stdout);
        const auto s = o.llama.run(batches);
        for (int b : batches) {
          theirs[b].push_back(s.at(b));
          std::printf("  B=%-3d %8.1f tok/s\n", b, s.at(b));
        }
      }
    }
  }
  std::printf("\ndecode tok/s, %d rounds, median [min - max]; ours: context 128, llama.cpp: context %d..%d\n",
              o.rounds, o.llama.prompt, o.llama.prompt + o.llama.gen - 1);
  std::printf("%5s  %26s  %26s  %12s\n", "batch", "ours", "llama.cpp", "ours/llama");
  for (int b : batches) {
    const Spread a = spread(ours[b]), t = spread(theirs[b]);
    char sa[64], st[64];
    std::snprintf(sa, sizeof sa, "%.1f [%.1f - %.1f]", a.median, a.lo, a.hi);
    std::snprintf(st, sizeof st, "%.1f [%.1f - %.1f]", t.median, t.lo, t.hi);
    std::printf("%5d  %26s  %26s  %11.2fx\n", b, sa, st, a.median / t.median);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  const bool peer = take_flags(argc, argv, o);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("packed_gemm", engine::cpu::packed_gemm_isa());  // the CPU GEMM's kernel
  if (!peer) {
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
  }
  try {
    side_by_side(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "decode_step_bench: %s\n", e.what());
    return 1;
  }
  benchmark::Shutdown();
  return 0;
}
