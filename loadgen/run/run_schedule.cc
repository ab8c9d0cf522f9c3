// run_schedule (run.h): one timed run of a workload against a client — the recorder, the dispatcher thread
// sending each item at its arrival time (or the sessions' turns, or a closed loop), progress, the saturation
// stop, the drain and what is left in flight, then the summary with the client's own cost.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <thread>

#include "common/thread_name.h"
#include "loadgen/run/dispatcher.h"
#include "loadgen/run/progress.h"
#include "loadgen/run/run.h"
#include "loadgen/run/saturation.h"
#include "loadgen/run/session_dispatcher.h"
#include "loadgen/run/timeslices.h"

namespace loadgen {
namespace {

// The client's own cost: its event loop's busy time (or, without one, loadgen's time in the callbacks) over the
// run's wall time, and the lag from each chunk's arrival to its record.
results::ClientCost client_cost(const std::vector<RequestRecord>& records, double loop_busy_s, double callback_s,
                                double wall_s, double loop_cpu_s, int64_t ended) {
  results::ClientCost c;
  if (loop_cpu_s >= 0 && ended > 0) c.cpu_per_request_us = 1e6 * loop_cpu_s / static_cast<double>(ended);
  c.busy_source = loop_busy_s >= 0 ? "event loop" : "callbacks";
  c.busy_fraction = wall_s > 0 ? (loop_busy_s >= 0 ? loop_busy_s : callback_s) / wall_s : 0;
  std::vector<double> lag;
  for (const RequestRecord& r : records)
    for (float x : r.chunk_lag_s) lag.push_back(1000.0 * x);
  const results::Distribution d = distribution(std::move(lag));
  c.chunks = d.count;
  c.chunk_lag_p50_ms = d.median;
  c.chunk_lag_p99_ms = d.p99;
  c.chunk_lag_max_ms = d.max;
  return c;
}

// The prefix cache's lookups between two snapshots of the engine's counters.
results::PrefixCacheSummary prefix_cache_between(const engine::EngineStats& a, const engine::EngineStats& b) {
  return {b.prefix_cache_queries - a.prefix_cache_queries, b.prefix_cache_hits - a.prefix_cache_hits,
          b.prefix_cache_block_queries - a.prefix_cache_block_queries,
          b.prefix_cache_block_hits - a.prefix_cache_block_hits};
}

}  // namespace

RunResult run_schedule(Client& client, const std::vector<WorkItem>& items, const std::vector<int>& prompt_lens,
                       const std::vector<double>& arrival_s, const RunPlan& plan, RequestObserver* observer) {
  const size_t n = items.size();
  std::vector<int64_t> ids(n);
  std::vector<int> expect(n);
  for (size_t i = 0; i < n; ++i) {
    ids[i] = items[i].sample_id;
    expect[i] = items[i].max_new_tokens;
  }
  auto router = std::make_unique<WarmupRouter>();
  client.start(router.get());
  // A multi-turn run warms up with first turns only (a later turn's prompt exists only once its session runs).
  std::vector<WorkItem> first_turns;
  if (plan.sessions && plan.warmup > 0)
    for (const std::vector<size_t>& session : plan.sessions->sessions) first_turns.push_back(items[session[0]]);
  const WarmupResult warmup =
      router->run(client, plan.sessions && plan.warmup > 0 ? first_turns : items, plan.warmup, plan.drain_timeout_s);
  if (warmup.done < warmup.requests) {
    router.release();  // warm-up requests still in flight will call back into it
    throw std::runtime_error("--warmup: " + std::to_string(warmup.requests - warmup.done) + " of " +
                             std::to_string(warmup.requests) + " warm-up requests did not finish within --drain-timeout (" +
                             std::to_string(static_cast<int64_t>(plan.drain_timeout_s)) + " s)");
  }
  const engine::EngineStats stats_before = plan.engine_stats ? plan.engine_stats() : engine::EngineStats{};
  // The schedule starts a little after now so the first send is not already late.
  const Clock::time_point t0 = Clock::now() + std::chrono::milliseconds(20);
  auto recorder = std::make_unique<Recorder>(t0, ids, arrival_s, prompt_lens, expect);
  const double busy_before = client.busy_seconds(), cpu_before = client.cpu_seconds();
  recorder->set_observer(observer);
  recorder->set_record_log(plan.record_log);
  router->attach(recorder.get());
  const double span = arrival_s.empty() ? 0.0 : *std::max_element(arrival_s.begin(), arrival_s.end());
  ProgressLine progress(*recorder, static_cast<int64_t>(n), span, plan.progress);
  DispatchOptions dopt;
  dopt.max_concurrency = plan.max_concurrency;
  dopt.closed_loop = plan.closed_loop;
  std::atomic<bool> stop{false}, dispatch_done{false};
  int64_t sent = 0;
  std::unique_ptr<SessionDispatcher> sessions;
  if (plan.sessions) {
    sessions = std::make_unique<SessionDispatcher>(items, *plan.sessions, *recorder, plan.tokenize);
    router->attach(sessions.get());
  }
  std::thread dispatcher([&] {
    common::name_this_thread("lg-dispatch");
    sent = sessions ? sessions->run(client, t0, &stop)
                    : dispatch(client, *recorder, items, arrival_s, t0, dopt, &stop);
    dispatch_done = true;
  });
  // The main thread watches: the whole run is bounded (with a concurrency cap the dispatcher itself waits for
  // completions), and a signal stops the sending and starts a drain of at most --drain-timeout.
  const auto drain_for = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(plan.drain_timeout_s));
  const auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(span)) + drain_for;
  const auto poll = std::chrono::milliseconds(50);
  std::optional<Clock::time_point> stopped_at;
  std::string cause;
  Clock::time_point drain_deadline = deadline;
  auto signals = [&] { return plan.interrupt ? plan.interrupt->count.load() : 0; };
  auto check_signal = [&] {
    if (stopped_at || signals() == 0) return;
    stopped_at = Clock::now();
    cause = signal_name(plan.interrupt->signal.load());
    stop = true;
    drain_deadline = *stopped_at + drain_for;
  };
  SaturationDetector saturation(plan.saturation);
  bool saturated = false;
  auto next_sample = t0 + std::chrono::seconds(1);
  int64_t prev_first = 0, prev_ttft_us = 0;
  while (!dispatch_done.load()) {
    check_signal();
    if (plan.stop_on_saturation && !stopped_at && Clock::now() >= next_sample) {
      next_sample += std::chrono::seconds(1);
      const int64_t first = recorder->first_tokens(), ttft_us = recorder->ttft_sum_us();
      const double ttft = first > prev_first ? 1e-6 * static_cast<double>(ttft_us - prev_ttft_us) / static_cast<double>(first - prev_first)
                                             : NAN;
      prev_first = first;
      prev_ttft_us = ttft_us;
      saturation.add(std::chrono::duration<double>(Clock::now() - t0).count(),
                     static_cast<double>(recorder->sent() - recorder->done()), ttft);
      if (saturation.saturated()) {
        stopped_at = Clock::now();
        cause = "saturated";
        saturated = true;
        stop = true;
        drain_deadline = *stopped_at;  // hopeless: no drain
        if (plan.log) *plan.log << "loadgen: saturated, stopping: " << saturation.why() << '\n';
      }
    }
    // With a concurrency cap the dispatcher itself waits for completions, and sessions release their later
    // turns as earlier ones end: both are bounded by the deadline too.
    if ((plan.max_concurrency > 0 || sessions) && Clock::now() > deadline) stop = true;
    recorder->wait_done_at_least(static_cast<int64_t>(n), Clock::now() + poll);
  }
  dispatcher.join();
  if (!stopped_at) drain_deadline = std::max(deadline, Clock::now() + std::chrono::seconds(1));
  bool drained = false;
  for (;;) {
    if (client.wait_all(poll)) {
      drained = true;
      break;
    }
    check_signal();
    if (signals() >= 2 || saturated || Clock::now() >= drain_deadline) break;
  }
  progress.stop();
  const double wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const double busy_after = client.busy_seconds(), cpu_after = client.cpu_seconds();
  int64_t aborted = 0;
  if (!drained && stopped_at) {
    aborted = recorder->abort_unfinished(saturated ? "stopped: saturated" : "interrupted", Clock::now());
    drained = true;  // nothing is left in flight that the recorder still waits for
  }
  RunResult result;
  result.records = recorder->records(stopped_at ? "not sent (" + cause + ")"
                                     : drained  ? "not sent (the run stopped)"
                                                : "not finished within --drain-timeout");
  for (RequestRecord& r : result.records) {
    r.session_id = items[r.index].session_id;
    r.turn = items[r.index].turn;
  }
  result.summary = summarize(result.records, plan.metrics);
  if (stopped_at) {
    results::Interruption& in = result.summary.interruption.emplace();
    in.cause = cause;
    in.at_s = std::chrono::duration<double>(*stopped_at - t0).count();
    in.scheduled = static_cast<int64_t>(n);
    in.sent = sent;
    in.aborted = aborted;
    in.ended = recorder->done() - aborted;
  }
  result.summary.client_cost = client_cost(result.records, busy_before >= 0 ? busy_after - busy_before : -1,
                                           static_cast<double>(recorder->callback_ns()) * 1e-9, wall_s,
                                           cpu_before >= 0 && cpu_after >= 0 ? cpu_after - cpu_before : -1,
                                           recorder->done());
  if (plan.engine_stats) result.summary.prefix_cache = prefix_cache_between(stats_before, plan.engine_stats());
  result.rows = request_rows(result.records);
  result.warmup = warmup;
  result.t0 = t0;
  // Requests still in flight will call back into the recorder later: keep it alive rather than dangle.
  if (!drained || aborted > 0) {
    recorder->set_observer(nullptr);  // the observer (the logits dump) does not outlive this run
    recorder.release();
    router.release();
    sessions.release();
  }
  return result;
}

}  // namespace loadgen
