// The validity verdict (results/validity.h) from a run's summary and rows: VALID only when nothing below
// applies, every reason listed. MLPerf LoadGen's rules in spirit: a minimum duration and request count, the
// schedule kept (achieved send rate within a tolerance of -X, send lag p99), nothing failed or left unfinished,
// a prompt drain, no growing backlog, and enough completed requests for each p99 to have an upper bound at the
// confidence level (binomial order statistics, as MLPerf's early stopping: 459 values at p99 and 0.99).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "results/request_row.h"
#include "results/summary.h"

namespace loadgen {

struct ValidityOptions {
  double min_duration_s = 60;       ///< --min-duration
  int64_t min_requests = 100;       ///< --min-requests (completed)
  double confidence = 0.99;         ///< --confidence of the percentile bounds
  std::string preset;               ///< "mlperf-server" (--mlperf-server: 600 s, 100 requests, 0.99) or ""
  /// Achieved send rate within max(rate_tolerance, 3 / sqrt(N)) of -X, relative (a Poisson draw of N gaps is
  /// itself off by about 1 / sqrt(N)).
  double rate_tolerance = 0.05;
  double max_send_lag_p99_ms = 50;
  /// The drain after the last arrival within max(drain_allowance_s, drain_fraction x the arrival span).
  double drain_allowance_s = 10;
  double drain_fraction = 0.1;
  double max_e2el_trend = 2.0;      ///< last-quarter / first-quarter median E2E
  double busy_warning = 0.10;       ///< warn when the client was busy more than this fraction (Perf Analyzer)
};

/// MLPerf's server-scenario minimums: min_duration 600 s (mlperf.conf), min_query_count 100 (TestSettings'
/// default), early stopping at 0.99.
ValidityOptions mlperf_server_validity();

/// The smallest 1-based rank k such that the k-th smallest of n values is at or above the true `quantile`
/// (in (0, 1)) with probability >= `confidence`: the smallest k with P(Binomial(n, quantile) <= k - 1) >=
/// confidence. 0 when even the largest value is not (n too small).
int64_t upper_bound_rank(int64_t n, double quantile, double confidence);
/// The fewest values for which upper_bound_rank is not 0: ceil(log(1 - confidence) / log(quantile)).
int64_t min_values_for_bound(double quantile, double confidence);

/// The percentile's estimate (interpolated like the summary) and its bound over `values` (any order).
results::PercentileBound percentile_bound(const std::string& metric, std::vector<double> values, double percentile,
                                          double confidence);

/// The verdict. `rows` are the run's per-request rows (the TTFT / TPOT values the bounds are over); the
/// summary's client_cost (when set) gives the busy warning.
results::Validity judge_validity(const results::Summary& summary, const std::vector<results::RequestRow>& rows,
                                 const ValidityOptions& options);

}  // namespace loadgen
