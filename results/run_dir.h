// A run directory (docs/formats.md): summary.json, requests.csv and requests.jsonl, written by loadgen and
// read back by `loadgen report` and the sweep.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "results/request_row.h"
#include "results/server_metrics.h"
#include "results/summary.h"
#include "results/timeslice.h"

namespace results {

struct RunData {
  std::filesystem::path dir;
  std::string label;  ///< for legends and column heads: summary.label, else the directory's name
  Summary summary;
  std::vector<RequestRow> requests;
  bool has_chunks = false;  ///< requests came from requests.jsonl (chunk times known)
  std::vector<ServerScrape> server_metrics;  ///< server_metrics.jsonl, when the run scraped the server
  std::vector<Timeslice> timeslices;  ///< timeslices.csv, when the directory has one
};

/// Creates `dir` if needed and writes the three files, and server_metrics.jsonl when there are scrapes.
/// Throws std::runtime_error naming the file.
void write_run_dir(const std::filesystem::path& dir, const Summary& summary, const std::vector<RequestRow>& rows,
                   const std::vector<ServerScrape>& server_metrics = {});

bool is_run_dir(const std::filesystem::path& dir);  ///< has summary.json
/// summary.json plus requests.jsonl (or requests.csv, without chunk times; with neither, no rows). Throws
/// std::runtime_error naming the file (and line / field) when summary.json is missing or a file is malformed.
RunData load_run(const std::filesystem::path& dir);

}  // namespace results
