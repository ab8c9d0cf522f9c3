// The run's validity verdict (MLPerf LoadGen's "Result is VALID", for LLM serving): VALID only when the run was
// long and large enough, kept its schedule, lost nothing, drained promptly, and completed enough requests for
// each reported p99 to have an upper bound at the chosen confidence (binomial order statistics, as MLPerf's
// early stopping). Computed by loadgen/run/validity.h, written in summary.json's "validity".
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace results {

/// One percentile's estimate and its upper confidence bound: the `rank`-th smallest of the n values (1-based),
/// the smallest rank whose order statistic is at or above the true percentile with probability >= confidence.
/// No bound (rank 0) when n < min_n.
struct PercentileBound {
  std::string metric;           ///< "ttft" | "tpot"
  double percentile = 99;
  int64_t n = 0;                ///< values the estimate is over
  double estimate = std::numeric_limits<double>::quiet_NaN();  ///< ms, interpolated like the summary's
  std::optional<double> upper;  ///< ms
  int64_t rank = 0;
  int64_t min_n = 0;            ///< the fewest values that give a bound at this confidence
};

struct Validity {
  bool valid = false;
  std::vector<std::string> reasons;   ///< why INVALID, every one, in words
  std::vector<std::string> warnings;  ///< do not make it INVALID (e.g. the client was busy > 10 % of the run)
  double confidence = 0.99;
  double min_duration_s = 0;
  int64_t min_requests = 0;
  std::string preset;                 ///< "" | "mlperf-server"
  std::vector<PercentileBound> bounds;
  /// With --slo: every limited p99 has an upper bound within its limit (met), a bound above it (not met),
  /// or no bound (unknown: nullopt). slo_notes say which.
  std::optional<bool> slo_met;
  std::vector<std::string> slo_notes;
};

}  // namespace results
