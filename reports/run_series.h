// Per-run series the pages chart (report.html's runs section, compare.html, the server charts): latencies of the
// ok requests, and tokens / requests in flight over time from the per-request records.
#pragma once

#include <string>
#include <vector>

#include "reports/svg_chart.h"
#include "results/run_dir.h"

namespace reports {

/// Tokens in flight over time from a run's per-request records: a request adds its prompt tokens when it is
/// sent and each chunk's tokens as they stream, and removes all of them when it ends (the KV context the server
/// holds for it). A step series, x in seconds from the run start.
svg::Series tokens_in_flight(const results::RunData& run);
/// Requests sent and not yet ended over time (step series, x in seconds from the run start).
svg::Series requests_in_flight(const results::RunData& run);
/// The finite values of one latency field ("ttft", "tpot", "e2el") over the run's ok requests.
std::vector<double> ok_latencies_ms(const results::RunData& run, const std::string& metric);

}  // namespace reports
