// One benchmark run, reusable (the sweep calls it per cell): workload → schedule → dispatch → records →
// summary. No command-line parsing and no printing here beyond the optional `log` stream.
#pragma once

#include <functional>
#include <optional>
#include <memory>
#include <ostream>
#include <vector>

#include "loadgen/clients/system_under_test.h"
#include "loadgen/clients/warmup.h"
#include "loadgen/run/interrupt.h"
#include "loadgen/run/saturation.h"
#include "loadgen/run/metrics.h"
#include "loadgen/run/recorder.h"
#include "loadgen/run/run_config.h"
#include "loadgen/run/session_dispatcher.h"
#include "results/record_log.h"
#include "results/request_row.h"
#include "results/server_metrics.h"
#include "results/summary.h"
#include "results/timeslice.h"

namespace loadgen {

struct RunResult {
  results::Summary summary;
  std::vector<RequestRecord> records;
  std::vector<results::RequestRow> rows;
  int64_t logits_written = 0;   ///< requests written to --dump-logits
  WarmupResult warmup;
  Clock::time_point t0{};       ///< the schedule's start: time 0 of every *_s in the records
  std::vector<results::ServerScrape> server_metrics;  ///< --scrape-metrics: the server's /metrics over the run
  std::vector<results::Timeslice> timeslices;  ///< timeslices.csv (--timeslice)
};

/// How a prepared schedule is run (the part of the settings the timing loop needs).
struct RunPlan {
  int max_concurrency = 0;
  bool closed_loop = false;       ///< with max_concurrency: latency from when a slot freed (DispatchOptions)
  double drain_timeout_s = 3600;
  bool progress = false;          ///< the live stderr line
  int warmup = 0;                 ///< requests (copies of the first items, cycled) run before the schedule
  /// Set: the in-process engine's prefix cache is on; its counters after the warm-up and after the run give
  /// summary.prefix_cache.
  std::function<engine::EngineStats()> engine_stats;
  MetricsOptions metrics;
  /// Set: a multi-turn run. The items are grouped in these sessions; arrival_s holds each first turn's
  /// arrival (a later turn's entry is unused: it is released when the turn before it ends, plus think time).
  std::optional<SessionSchedule> sessions;
  TokenizeFn tokenize;            ///< multi-turn: measures a released turn's prompt
  /// Each request's row goes here the moment it ends (the run directory's requests.jsonl / .csv); may be null.
  std::shared_ptr<results::RecordLog> record_log;
  /// SIGINT / SIGTERM counted by the command line (may be null): the first stops sending and drains for at
  /// most drain_timeout_s, the second aborts what is still in flight; the summary gets its interruption.
  const Interrupt* interrupt = nullptr;
  /// End the run when its backlog and TTFT keep growing (loadgen/run/saturation.h): interruption "saturated",
  /// the requests in flight aborted at once.
  bool stop_on_saturation = false;
  SaturationOptions saturation;
  std::ostream* log = nullptr;  ///< one line when the run stops on saturation
};

/// Runs `items` at `arrival_s` against `client` and returns the records and computed summary (no run
/// metadata). With plan.warmup > 0, that many copies of the first items are first sent at once and waited
/// for (at most drain_timeout_s; throws if they do not finish); the schedule's clock starts after them.
/// `observer` (may be null) also sees logits and completions. With plan.engine_stats, summary.prefix_cache
/// counts the lookups of the timed run. Never leaves callbacks dangling: when requests are still in flight
/// after the drain timeout, the recorder is kept alive on purpose.
RunResult run_schedule(Client& client, const std::vector<WorkItem>& items, const std::vector<int>& prompt_lens,
                       const std::vector<double>& arrival_s, const RunPlan& plan, RequestObserver* observer);

/// The whole run from its resolved configuration: dataset (or --reference) → workload → arrivals →
/// run_schedule → summary with the run's metadata, effective settings and workload notes; --dump-logits
/// written and closed. Throws (DatasetError, std::invalid_argument, accuracy::LogitsFileError) naming the
/// file or option.
/// With config.output.out set, the directory and its settings.json exist before the first request, and every
/// request's row is appended to its requests.jsonl and requests.csv as it ends (results/record_log.h); the
/// caller writes the final files (results::write_run_dir). `interrupt`: as RunPlan::interrupt.
RunResult run_benchmark(const RunConfig& config, SystemUnderTest& sut, std::ostream* log = nullptr,
                        const Interrupt* interrupt = nullptr);

}  // namespace loadgen
