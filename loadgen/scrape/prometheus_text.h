// The Prometheus text exposition format (version 0.0.4, and OpenMetrics' "# EOF"), as every serving engine's
// /metrics writes it: "# HELP" / "# TYPE" lines and other comments, samples `name{label="value",...} value
// [timestamp]`, label values with the escapes \\ \" \n, values NaN / +Inf / -Inf, histogram and summary
// families whose _bucket{le=...}, _sum and _count lines are samples of their own.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "results/server_metrics.h"

namespace loadgen {

struct PrometheusParseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct PrometheusPage {
  std::vector<results::MetricSample> samples;
  std::map<std::string, std::string> types;  ///< family name -> counter | gauge | histogram | summary | untyped
};

/// Parses a whole page. Throws PrometheusParseError "line N: ..." for a line that is not a comment, blank,
/// or a sample (an unterminated label value, a value that is not a number...).
PrometheusPage parse_prometheus_text(std::string_view text);

}  // namespace loadgen
