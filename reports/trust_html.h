// report.html's trust section for a set of runs: the validity verdict with every reason, each p99 with its
// upper bound, the SLO on the bound, the client's own cost, an interruption, the steady window; and the
// timeslice charts (output tok/s and p99 TTFT per slice, one series per run that has timeslices.csv).
#pragma once

#include <string>
#include <vector>

#include "reports/svg_chart.h"
#include "results/run_dir.h"

namespace reports {

/// One column per run (the HTML table), colours as the summary table's.
std::string trust_table_html(const std::vector<const results::RunData*>& runs);

/// The timeslice charts; empty when no run has timeslices.
std::vector<svg::Chart> timeslice_charts(const std::vector<const results::RunData*>& runs);

}  // namespace reports
