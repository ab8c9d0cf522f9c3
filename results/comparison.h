// `loadgen compare A B` (compare.json, docs/formats.md): per metric, each run's estimate with its bootstrap
// confidence interval, the ratio B / A with its interval, and a verdict; warnings when the two runs' workloads
// differ. For two sweeps, one comparison per cell both have.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace results {

struct MetricComparison {
  std::string metric;                 ///< "<ttft|tpot|itl|e2el>_<mean|median|p90|p95|p99>"
  int64_t n_a = 0, n_b = 0;           ///< values each estimate is over
  double a = std::numeric_limits<double>::quiet_NaN(), a_lo = a, a_hi = a;  ///< ms
  double b = a, b_lo = a, b_hi = a;
  double ratio = a, ratio_lo = a, ratio_hi = a;  ///< B / A
  std::string verdict;                ///< "faster" | "slower" (B against A) | "no significant difference" | "no data"
};

struct Comparison {
  std::string a_dir, b_dir, a_label, b_label;
  double confidence = 0.95;           ///< family-wise, over all metrics
  double per_metric_confidence = 0.95;///< each interval's level (Bonferroni: 1 - (1 - confidence) / metrics)
  int resamples = 2000;
  uint64_t seed = 1;
  std::vector<MetricComparison> metrics;
  std::vector<std::string> warnings;  ///< the workloads differ (dataset, seeds, rate, N, ...)
};

/// Two sweeps compared cell by cell (cells both have, matched by batch size and rate).
struct SweepComparisonCell {
  int batch_size = 0;
  double qps = 0;
  Comparison comparison;
};

struct SweepComparison {
  std::string a_dir, b_dir;
  std::vector<SweepComparisonCell> cells;
  std::vector<std::string> warnings;  ///< cells only one sweep has
};

}  // namespace results
