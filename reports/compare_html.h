// compare.html: `loadgen compare A B` for people: the workload warnings, a table of each metric's estimates
// with their intervals, the ratio B / A and the verdict, and the TTFT / TPOT / E2E CDFs of both runs on one
// chart each; for two sweeps, the verdicts cell by cell. Formats; computes nothing.
#pragma once

#include <filesystem>
#include <string>

#include "results/comparison.h"
#include "results/run_dir.h"

namespace reports {

std::string render_compare_html(const results::Comparison& c, const results::RunData& a, const results::RunData& b);
std::string render_sweep_compare_html(const results::SweepComparison& c);
/// Writes `html` to `path` atomically.
void write_compare_html(const std::filesystem::path& path, const std::string& html);

}  // namespace reports
