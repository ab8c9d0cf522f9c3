// loadgen's own overhead: with a system under test that answers instantly, how many requests/s the
// dispatcher + recorder can schedule and record, and how late requests go out (send lag) at 1,000 req/s.
// The instrument is tests/serial_client.h with no service time: a real Client whose own thread emits each
// request's chunks and done the moment it is sent, so every cost measured is loadgen's (and that thread's
// hand-off).
#include <benchmark/benchmark.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <limits>

#include "loadgen/workload/arrival.h"
#include "loadgen/run/recorder.h"
#include "loadgen/run/run.h"
#include "results/record_log.h"
#include "tests/support/serial_client.h"

namespace {

using loadgen::Clock;

std::vector<loadgen::WorkItem> make_items(int n, int tokens) {
  std::vector<loadgen::WorkItem> items(n);
  for (int i = 0; i < n; ++i) {
    items[i].index = i;
    items[i].sample_id = i;
    items[i].prompt = "instant";
    items[i].max_new_tokens = tokens;
  }
  return items;
}

loadgen::RunResult run(int n, int tokens, double rate, uint64_t seed,
                       std::shared_ptr<results::RecordLog> record_log = nullptr) {
  testing_support::SerialClient client(std::chrono::microseconds(0), tokens);
  auto items = make_items(n, tokens);
  std::vector<int> plen(n, 8);
  loadgen::ArrivalOptions a;
  a.rate = rate;
  a.seed = seed;
  loadgen::RunPlan plan;
  plan.metrics.target_rate = rate;
  plan.record_log = std::move(record_log);
  return loadgen::run_schedule(client, items, plen, loadgen::arrival_times(n, a), plan, nullptr);
}

/// Everything at t = 0: the rate at which loadgen can hand requests over and record their events.
void BM_ScheduleAndRecordAllAtOnce(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0)), tokens = static_cast<int>(state.range(1));
  double lag_p99 = 0;
  for (auto _ : state) {
    auto r = run(n, tokens, std::numeric_limits<double>::infinity(), 0);
    if (r.summary.completed != n) state.SkipWithError("not every request completed");
    lag_p99 = r.summary.send_lag_p99_ms;
  }
  state.SetItemsProcessed(state.iterations() * n);  // items_per_second = requests scheduled + recorded per s
  state.counters["tokens_per_request"] = tokens;
  state.counters["send_lag_p99_ms"] = lag_p99;
}
BENCHMARK(BM_ScheduleAndRecordAllAtOnce)->Args({20000, 1})->Args({20000, 16})->Unit(benchmark::kMillisecond)->UseRealTime();

/// The same with the run directory's record log on (each ended request's row appended to requests.jsonl and
/// requests.csv with one write(2) each, as a real run does): beside the one above, the cost of "nothing lost".
/// Compare the two in one process with --benchmark_enable_random_interleaving=true --benchmark_repetitions=N.
void BM_ScheduleAndRecordAllAtOnceWithRecordLog(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0)), tokens = static_cast<int>(state.range(1));
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "loadgen_overhead_bench_records";
  for (auto _ : state) {
    auto log = std::make_shared<results::RecordLog>(dir);  // truncates the files: every iteration writes n rows
    auto r = run(n, tokens, std::numeric_limits<double>::infinity(), 0, log);
    if (r.summary.completed != n || log->appended() != n) state.SkipWithError("not every request was recorded");
  }
  std::filesystem::remove_all(dir);
  state.SetItemsProcessed(state.iterations() * n);
  state.counters["tokens_per_request"] = tokens;
}
BENCHMARK(BM_ScheduleAndRecordAllAtOnceWithRecordLog)->Args({20000, 1})->Args({20000, 16})->Unit(benchmark::kMillisecond)->UseRealTime();

/// Poisson at 1,000 req/s for 5 s: how late requests go out (send lag) when loadgen is the only cost.
void BM_SendLagAtPoisson1000(benchmark::State& state) {
  const int tokens = static_cast<int>(state.range(0));
  results::Summary s;
  for (auto _ : state) s = run(5000, tokens, 1000.0, 1).summary;
  state.counters["send_lag_p50_ms"] = s.send_lag_p50_ms;
  state.counters["send_lag_p99_ms"] = s.send_lag_p99_ms;
  state.counters["send_lag_max_ms"] = s.send_lag_max_ms;
  state.counters["achieved_rate"] = s.achieved_request_rate;
  state.counters["kept_up"] = s.kept_up;
}
BENCHMARK(BM_SendLagAtPoisson1000)->Arg(16)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

/// One recorder callback (uncontended): the cost a client's thread pays per streamed token.
void BM_RecorderOnChunk(benchmark::State& state) {
  const int n = 1024;
  std::vector<int64_t> ids(n, 0);
  std::vector<double> sched(n, 0);
  std::vector<int> plen(n, 1), expect(n, 1 << 14);
  loadgen::Recorder rec(Clock::now(), ids, sched, plen, expect);
  uint64_t i = 0, calls = 0;
  const auto t = Clock::now();
  for (auto _ : state) {
    rec.on_chunk(i, 1, "x", t);
    if (++calls % 16000 == 0) i = (i + 1) % n;  // stay within the reserved capacity
  }
}
BENCHMARK(BM_RecorderOnChunk);

}  // namespace

BENCHMARK_MAIN();
