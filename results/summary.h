// A run's summary (summary.json, docs/formats.md): computed by loadgen's metrics from the records, read back
// by `loadgen report` and the sweep, formatted by reports/. Plain data.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "results/server_metrics.h"
#include "results/client_cost.h"
#include "results/interruption.h"
#include "results/validity.h"

namespace results {

/// mean, median, std, p90, p95, p99, max of one latency metric (ms); percentiles interpolate linearly
/// (numpy's default). +inf appears only under --failures-as-inf.
struct Distribution {
  int64_t count = 0;
  double mean = 0, median = 0, std = 0, p90 = 0, p95 = 0, p99 = 0, max = 0;
};

/// Latency limits of a service-level objective (goodput, the sweep's --qps auto search).
struct Slo {
  double ttft_ms = 0;  ///< 0: no limit
  double tpot_ms = 0;  ///< 0: no limit
};

/// The in-process engine's prefix cache over the timed run (its EngineStats counters at the end less those
/// at the start, so the warm-up's lookups are not in it). Only with --enable-prefix-caching.
struct PrefixCacheSummary {
  int64_t queries = 0;        ///< prompt tokens looked up when requests were admitted
  int64_t hits = 0;           ///< of those, found cached (their prefill skipped)
  int64_t block_queries = 0;  ///< full KV blocks looked up
  int64_t block_hits = 0;     ///< of those, found cached
  double hit_rate() const { return queries > 0 ? static_cast<double>(hits) / static_cast<double>(queries) : 0.0; }
  double block_hit_rate() const {
    return block_queries > 0 ? static_cast<double>(block_hits) / static_cast<double>(block_queries) : 0.0;
  }
};

/// TTFT of the requests of one turn index of a multi-turn run (turn 0: the sessions' first requests).
struct TurnLatency {
  int turn = 0;
  Distribution ttft;
};

/// --steady-state: the percentiles again over the steady window only, without the ramp-up (until the requests
/// in flight first reach their plateau) and the drain (after the last arrival).
struct SteadyState {
  double start_s = 0, end_s = 0;  ///< the window, seconds from the run start (requests scheduled within it)
  double plateau_in_flight = 0;   ///< the level of requests in flight the ramp-up reached
  int64_t requests = 0;           ///< ok requests scheduled in the window
  Distribution ttft, tpot, itl, e2el;
};

struct Summary {
  // Who and what (filled by the run from its configuration and the system under test).
  std::string date, backend, label, model_id, tokenizer_id;
  double request_rate = std::numeric_limits<double>::infinity();  ///< target; inf for -X inf
  double burstiness = 1.0;
  int max_concurrency = 0;              ///< 0: none
  // Counts.
  int64_t num_prompts = 0, completed = 0, failed = 0, rejected = 0;
  int64_t total_input_tokens = 0, total_output_tokens = 0;
  // Time and rates.
  double duration = 0;                  ///< first scheduled arrival -> last completion (s)
  double request_throughput = 0, input_throughput = 0, output_throughput = 0, total_token_throughput = 0;
  std::optional<Slo> slo;
  int64_t good_requests = 0;
  std::optional<double> request_goodput;
  Distribution ttft, tpot, itl, e2el;
  bool failures_as_inf = false;
  // Did the run keep up?
  double send_lag_p50_ms = 0, send_lag_p99_ms = 0, send_lag_max_ms = 0;
  double achieved_request_rate = 0;     ///< (N-1) / (last send - first send); inf when all sent at once
  double scheduled_request_rate = 0;    ///< (N-1) / (last - first scheduled arrival): the drawn schedule's own
                                        ///< rate (differs from the target by Poisson noise); inf for -X inf
  double last_arrival_s = 0;            ///< last scheduled arrival
  double drain_s = 0;                   ///< last completion - last scheduled arrival
  double e2el_trend = 0;                ///< median E2E of the last quarter of requests / of the first quarter
  bool kept_up = false, drained = false, accounted = false;
  std::vector<std::string> kept_up_notes;  ///< why not, in words
  std::map<std::string, int64_t> failures_by_reason;
  std::string output_token_source;      ///< engine | usage | retokenized | chunks (mixed: joined with +)
  std::string first_token_source;       ///< what TTFT's first token was: content | reasoning (both: joined with +)
  std::optional<PrefixCacheSummary> prefix_cache;  ///< the in-process engine with prefix caching on
  std::optional<ScrapeSummary> server_metrics;     ///< --scrape-metrics: the server's /metrics was sampled
  std::vector<TurnLatency> ttft_by_turn;  ///< multi-turn runs: one per turn index, ascending; else empty
  // Can the run be trusted (issue 14): stopped early?, the verdict, the client's own cost, the steady window.
  std::optional<Interruption> interruption;  ///< set when the run stopped before its schedule ended
  Validity validity;
  std::optional<ClientCost> client_cost;
  std::optional<SteadyState> steady_state;
  // Context (JSON objects the writers copy as they are).
  nlohmann::json engine = nlohmann::json::object();
  nlohmann::json settings = nlohmann::json::object();
  nlohmann::json workload = nlohmann::json::object();  ///< dataset, skipped records, too-long requests
};

}  // namespace results
