// What --dump-logprobs --top-logprobs K costs the client: one streamed OpenAI completion of 16 tokens, as
// llm-serve writes it (each chunk with its choices[0].logprobs when K >= 0), turned into chunks, an outcome
// and — with K — 16 StepLogprobs handed to the LogprobsDump that writes the top-K file. An instant server: the
// bytes are already here, so items_per_second is the client's ceiling in requests/s for that K. K = -1 is the
// run without logprobs; the overhead is 1 - rate(K) / rate(-1).
#include <benchmark/benchmark.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "bench/completion_stream.h"
#include "common/cpu_time.h"
#include "loadgen/clients/logprobs_deferred.h"
#include "loadgen/clients/openai_event.h"
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
  double requests_s = 0;  // this thread's CPU in the requests' loop alone
  const double cpu0 = common::process_cpu_seconds();
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
    const double loop0 = common::this_thread_cpu_seconds();
    for (int i = 0; i < n; ++i) {
      const auto t = Clock::now();
      loadgen::HttpResponse r(i, &rec, nullptr);
      r.expect(items[i]);
      rec.on_sent(i, t);
      r.on_headers(200, "text/event-stream");
      r.on_body(body, t);
      rec.on_done(i, r.finish(t), t);
    }
    requests_s += common::this_thread_cpu_seconds() - loop0;
    if (dump) dump->close();  // reading the spooled JSON and the HDF5 writes: the client's cost too
    done += n;
  }
  const double cpu1 = common::process_cpu_seconds();
  state.SetItemsProcessed(static_cast<int64_t>(done));
  // This thread in the requests' loop (the client's share: SSE, decode, recorder, the hand-over of the
  // logprobs text), per request; cpu_us adds the writer thread and the files' set-up and close.
  state.counters["client_thread_us"] = 1e6 * requests_s / static_cast<double>(done);
  // CPU time of every thread (this one and the dump's writer) per request, setup included: 1e6 / this is the
  // ceiling on one core, whatever else the machine runs.
  state.counters["cpu_us"] = 1e6 * (cpu1 - cpu0) / static_cast<double>(done);
  state.counters["top_k"] = k;
  state.counters["body_bytes"] = static_cast<double>(body.size());
  std::filesystem::remove(path);
}
BENCHMARK(BM_StreamedRequest)->Arg(-1)->Arg(0)->Arg(5)->Arg(20)->Unit(benchmark::kMillisecond)->UseRealTime();

/// The writer thread's share: one chunk's choices[0].logprobs (the chosen token and K alternatives, as
/// llm-serve sends them) read from its JSON text into steps, as LogprobsDump does for every deferred event.
void BM_ReadChunkLogprobs(benchmark::State& state) {
  const int k = static_cast<int>(state.range(0));
  const std::string body = bench::completion_stream(k, 1);
  const size_t b = body.find("\"logprobs\":") + 11, e = body.find(",\"text\":", b);  // keys in dump order
  const std::string json = body.substr(b, e - b);
  std::string error;
  if (!loadgen::read_logprobs_json(loadgen::LogprobsLayout::kCompletion, json, error)) state.SkipWithError(error.c_str());
  for (auto _ : state) {
    auto steps = loadgen::read_logprobs_json(loadgen::LogprobsLayout::kCompletion, json, error);
    benchmark::DoNotOptimize(steps);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * json.size()));
  state.counters["json_bytes"] = static_cast<double>(json.size());
}
BENCHMARK(BM_ReadChunkLogprobs)->Arg(1)->Arg(5)->Arg(20);

/// The client thread's share of one chunk: its event decoded, with K >= 0 its logprobs located and left as
/// text, as HttpResponse::decode does under --dump-logprobs; K = -1 the plain decode. range(1) = 1: the
/// one-pass chunk decoder (openai_event.h) first, as HttpResponse does; 0: the DOM paths it replaced.
void BM_DecodeChunkOnTheClientThread(benchmark::State& state) {
  const int k = static_cast<int>(state.range(0));
  const bool one_pass = state.range(1) != 0;
  const std::string body = bench::completion_stream(k, 1);
  const std::string data = body.substr(6, body.find("\n\n") - 6);  // "data: {...}"
  for (auto _ : state) {
    loadgen::LogprobsJson deferred;
    std::optional<loadgen::ApiEvent> ev;
    if (one_pass) ev = loadgen::decode_openai_chunk(data, k >= 0 ? &deferred : nullptr);
    if (!ev) ev = k >= 0 ? loadgen::decode_api_event_deferring(data, deferred) : loadgen::decode_api_event(data);
    benchmark::DoNotOptimize(ev);
    benchmark::DoNotOptimize(deferred);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * data.size()));
  state.counters["event_bytes"] = static_cast<double>(data.size());
}
BENCHMARK(BM_DecodeChunkOnTheClientThread)->ArgsProduct({{-1, 0, 20}, {0, 1}});

}  // namespace

BENCHMARK_MAIN();
