// Writes a run directory (docs/formats.md): requests.csv, requests.jsonl, summary.json.
#pragma once

#include <filesystem>
#include <string>

#include "loadgen/run.h"

namespace loadgen {

/// reports/runs/<YYYYmmdd-HHMMSS> (relative to the working directory).
std::string default_out_dir();

/// Creates `dir` if needed and writes the three files. Throws std::runtime_error naming the file.
void write_run_dir(const std::filesystem::path& dir, const RunResult& result);

}  // namespace loadgen
