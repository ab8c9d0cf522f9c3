// report.html: one self-contained page (inline CSS and SVG; no scripts, no fonts, images or anything else
// fetched) built from saved run and sweep directories, so runs made at different times can be compared side by
// side. Sections: for each sweep, its table and the throughput / p99 latency against QPS per batch size (and the
// `--qps auto` probes); then, over every run (single runs and sweep cells alike), the summary table with one
// column per run, latency CDFs (TTFT, TPOT, E2E) with one series per run, and tokens / requests in flight over
// time; last, each run's effective settings.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "reports/run_series.h"  // the per-run series its charts draw (tokens_in_flight, ...)
#include "reports/svg_chart.h"
#include "results/run_dir.h"
#include "results/sweep.h"

namespace reports {

using results::RunData;
using results::SweepData;

struct LoadedSweep {
  SweepData sweep;
  std::vector<RunData> cells;  ///< the runs of its ok cells that could be read, labelled "bs16 · 3 QPS"
};

struct ReportInput {
  std::string title = "loadgen report";
  std::vector<LoadedSweep> sweeps;
  std::vector<RunData> runs;  ///< single runs (not part of a sweep)
};

/// Loads each directory as a sweep (it has sweep.json) or a run (it has summary.json). Throws
/// std::runtime_error naming the directory when it is neither, or the file and field that is malformed. A
/// sweep cell whose directory cannot be read is skipped with a line in `warnings` (when given).
ReportInput load_report_input(const std::vector<std::filesystem::path>& dirs,
                              std::vector<std::string>* warnings = nullptr);

/// The whole page.
std::string render_html_report(const ReportInput& input);

/// Renders and writes `path` atomically.
void write_html_report(const ReportInput& input, const std::filesystem::path& path);

}  // namespace reports
