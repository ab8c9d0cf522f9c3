// Writers for a batch-size × QPS sweep (docs/formats.md): the terminal table laid out like the competition's
// (rows batch size, columns target QPS, each cell "total time / p99 TTFT"), sweep.csv, sweep.json, and the
// `--qps auto` search as a table of probes. They format what the cells' summaries say; they compute nothing.
#pragma once

#include <filesystem>
#include <string>

#include "reports/run_data.h"

namespace reports {

/// The competition's table. A cell that failed reads "failed"; one whose run did not keep up with its
/// schedule is marked '*' with a footnote.
std::string sweep_table(const SweepData& sweep);

/// The `--qps auto` result: max sustainable QPS per batch size, then every probe in the order it ran.
/// Empty when the sweep has no auto search.
std::string auto_table(const SweepData& sweep);

/// sweep.csv: header `batch_size,qps,status,duration,completed,failed,request_throughput,output_throughput,
/// p99_ttft_ms,p99_tpot_ms,mean_e2el_ms`, one row per cell; numbers exactly as in the cell's summary.json
/// (shortest round-trip form), empty where the summary has none.
std::string sweep_csv(const SweepData& sweep);

/// Writes sweep.csv and sweep.json into `dir` (each via a temporary name, then renamed, so a crash never
/// leaves half a file). Throws std::runtime_error naming the file on I/O errors.
void write_sweep_files(const SweepData& sweep, const std::filesystem::path& dir);

/// A cell's column head / row head: "0.5", "3"; a batch size of 0 (remote) reads "server".
std::string qps_label(double qps);
std::string batch_size_label(int batch_size);

/// Writes `text` to `path` through `path`.tmp and a rename.
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

}  // namespace reports
