// Metrics from the raw records (definitions in DESIGN.md): latency from the scheduled arrival,
// TTFT = first token - arrival, E2E = completion - arrival, TPOT = (E2E - TTFT)/(out - 1) for out > 1,
// ITL = gaps between chunks with a k-token chunk counted as k equal gaps. Percentiles over successful
// requests, interpolated linearly like numpy.percentile; --failures-as-inf adds +inf per failure.
#pragma once

#include <optional>
#include <vector>

#include "loadgen/run/recorder.h"
#include "results/request_row.h"
#include "results/summary.h"

namespace loadgen {

struct MetricsOptions {
  double target_rate = std::numeric_limits<double>::infinity();  ///< -X (for achieved vs target)
  std::optional<results::Slo> slo;
  bool failures_as_inf = false;
  double max_send_lag_p99_ms = 50;  ///< above this the client did not keep up with the schedule
  double max_e2el_trend = 2.0;      ///< last-quarter / first-quarter median E2E above this: the engine fell behind
  double min_rate_fraction = 0.95;  ///< achieved rate below this fraction of the target: not kept up
  /// Completions per second over the run below this fraction of the arrival rate: the engine did not keep up
  /// (the drain after the last arrival was long). Short runs weigh the drain more: use -T of a minute or more.
  double min_throughput_fraction = 0.8;
};

/// numpy.percentile(values, p) with linear interpolation; `sorted` ascending, non-empty.
double percentile_sorted(const std::vector<double>& sorted, double p);
/// mean, median, std (population, like numpy), p90/p95/p99, max; all zero when empty.
results::Distribution distribution(std::vector<double> values);

/// Per-request derived values (one row per record, same order).
results::RequestRow request_row(const RequestRecord& r);
std::vector<results::RequestRow> request_rows(const std::vector<RequestRecord>& records);
/// The raw record back from a saved row (requests.jsonl), for recomputing a summary from a run directory: chunk
/// times and tokens as saved; the token count's source is not saved and reads "chunks".
RequestRecord record_from_row(const results::RequestRow& row);

/// Everything in results::Summary that is computed from the records (counts, rates, distributions, kept_up ...).
/// Fields describing the run (date, model, settings ...) are left for the caller.
results::Summary summarize(const std::vector<RequestRecord>& records, const MetricsOptions& options);

}  // namespace loadgen
