// A batch-size × QPS sweep on the terminal: the table laid out like the competition's (rows batch size, columns
// target QPS, each cell "total time / p99 TTFT") and the `--qps auto` search as a table of probes. They format
// what the cells' summaries say; they compute nothing. (sweep.csv and sweep.json: results/sweep_json.h.)
#pragma once

#include <filesystem>
#include <string>

#include "results/sweep.h"

namespace reports {

using results::SweepData;

/// The competition's table. A cell that failed reads "failed"; one whose run did not keep up with its
/// schedule is marked '*' with a footnote.
std::string sweep_table(const SweepData& sweep);

/// The closed-loop cells (`--concurrency`): rows batch size, columns requests in flight, each cell
/// "requests/s / p99 TTFT". Empty when the sweep has none.
std::string concurrency_table(const SweepData& sweep);

/// The `--qps auto` result: max sustainable QPS per batch size, then every probe in the order it ran.
/// Empty when the sweep has no auto search.
std::string auto_table(const SweepData& sweep);

}  // namespace reports
