// `loadgen compare`: two runs' per-request latencies side by side with seeded bootstrap confidence intervals
// (percentile method, >= 1,000 resamples; a smoothed bootstrap for medians and percentiles), the ratio B / A
// and a verdict per metric at a family-wise confidence (Bonferroni over the metrics): "slower" / "faster" when
// the ratio's interval excludes 1. Two runs of one configuration say "no significant difference" for every
// metric in at least 95 % of repeats, and a 10 % TPOT slowdown at n = 1,000 is found (tests/loadgen/compare).
// Also the workload differences that make a comparison unfair.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "results/comparison.h"
#include "results/run_dir.h"
#include "results/sweep.h"

namespace loadgen {

struct CompareOptions {
  std::vector<std::string> metrics = {"ttft_median", "ttft_p99", "tpot_median", "tpot_p99", "e2el_median", "e2el_p99"};
  double confidence = 0.95;
  int resamples = 2000;
  uint64_t seed = 1;
};

/// Throws std::invalid_argument naming --metric for a name that is not <ttft|tpot|itl|e2el>_<mean|median|p90|p95|p99>.
void check_metric_name(const std::string& metric);

/// The ok requests' values of one metric's field ("ttft" ...; itl: every gap) in a run.
std::vector<double> metric_values(const results::RunData& run, const std::string& field);

results::Comparison compare_runs(const results::RunData& a, const results::RunData& b, const CompareOptions& options);

/// What differs between the two runs' workloads (dataset, seeds, rate, N, lengths, model), in words.
std::vector<std::string> workload_differences(const results::RunData& a, const results::RunData& b);


/// Two sweep directories cell by cell: cells (batch size, rate) both measured are compared as runs; cells
/// only one of them has are named in the warnings. Throws std::runtime_error naming a file that is malformed.
results::SweepComparison compare_sweeps(const std::filesystem::path& a, const std::filesystem::path& b,
                                        const CompareOptions& options);

}  // namespace loadgen
