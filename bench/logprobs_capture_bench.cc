// What --dump-logprobs --top-logprobs K costs the client: one streamed OpenAI completion of 16 tokens, as
// llm-serve writes it (each chunk with its choices[0].logprobs when K >= 0), turned into chunks, an outcome
// and — with K — 16 StepLogprobs handed to the LogprobsDump that writes the top-K file. An instant server: the
// bytes are already here, so items_per_second is the client's ceiling in requests/s for that K. K = -1 is the
// run without logprobs; the overhead is 1 - rate(K) / rate(-1).
#include <benchmark/benchmark.h>

#include <filesystem>
#include <string>
#include <vector>

#include "bench/completion_stream.h"
#include "loadgen/clients/http_response.h"
#include "loadgen/run/logprobs_dump.h"
#include "loadgen/run/recorder.h"

namespace {

using loadgen::Clock;

constexpr int kTokens = 16;

void BM_StreamedRequest(benchmark::State& state) {
  const int k = static_cast<int>(state.range(0));
  const std::string body = bench::completion_stream(k, kTokens);
  const int n = 4096;  // requests per dump file; the loop cycles through them
  std::vector<loadgen::WorkItem> items(n);
  for (int i = 0; i < n; ++i) {
    items[i].index = i;
    items[i].sample_id = i;
    items[i].prompt = "instant";
    items[i].prompt_tokens = {1, 2, 3, 4, 5, 6, 7, 8};
    items[i].max_new_tokens = kTokens;
    items[i].top_logprobs = k;
  }
  const std::filesystem::path path = std::filesystem::temp_directory_path() / "logprobs_capture_bench.h5";
  uint64_t done = 0;
  for (auto _ : state) {
    state.PauseTiming();
    loadgen::Recorder rec(Clock::now(), std::vector<int64_t>(n, 0), std::vector<double>(n, 0.0), std::vector<int>(n, 8),
                          std::vector<int>(n, kTokens));
    std::unique_ptr<loadgen::LogprobsDump> dump;
    if (k >= 0) {
      accuracy::FileInfo info;
      info.vocab_size = 32000;
      info.top_k = std::max(k, 1);
      dump = std::make_unique<loadgen::LogprobsDump>(path.string(), info, items, loadgen::TokenIdMap(), nullptr);
      rec.set_observer(dump.get());
    }
    state.ResumeTiming();
    for (int i = 0; i < n; ++i) {
      const auto t = Clock::now();
      loadgen::HttpResponse r(i, &rec, nullptr);
      r.expect(items[i]);
      rec.on_sent(i, t);
      r.on_headers(200, "text/event-stream");
      r.on_body(body, t);
      rec.on_done(i, r.finish(t), t);
    }
    if (dump) dump->close();  // the writer thread's HDF5 writes are the client's cost too
    done += n;
  }
  state.SetItemsProcessed(static_cast<int64_t>(done));
  state.counters["top_k"] = k;
  state.counters["body_bytes"] = static_cast<double>(body.size());
  std::filesystem::remove(path);
}
BENCHMARK(BM_StreamedRequest)->Arg(-1)->Arg(0)->Arg(5)->Arg(20)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
