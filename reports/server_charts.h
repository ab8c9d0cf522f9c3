// The server's side of a run in the HTML report: the running and waiting requests its /metrics reported
// (server_metrics.jsonl) beside the client's own requests in flight, and its KV-cache use, over the run.
#pragma once

#include <vector>

#include "reports/svg_chart.h"
#include "results/run_dir.h"

namespace reports {

/// The two charts, or none when no run has server metrics (a run without them adds no series).
std::vector<svg::Chart> server_charts(const std::vector<const results::RunData*>& runs);

}  // namespace reports
