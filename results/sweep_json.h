// sweep.json <-> SweepData (docs/formats.md), and sweep.csv (a flat view of the cells' summaries).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "results/sweep.h"

namespace results {

nlohmann::json sweep_to_json(const SweepData& sweep);
/// Throws std::runtime_error naming `name` (the file) and the cell or field that is malformed.
SweepData sweep_from_json(const nlohmann::json& j, const std::filesystem::path& dir, const std::string& name);

/// sweep.csv: header `batch_size,qps,status,duration,completed,failed,request_throughput,output_throughput,
/// p99_ttft_ms,p99_tpot_ms,mean_e2el_ms`, one row per cell; numbers exactly as in the cell's summary.json
/// (shortest round-trip form), empty where the cell has no summary or the summary no value.
std::string sweep_csv(const SweepData& sweep);

/// Writes sweep.csv and sweep.json into `dir` (each via a temporary name, then renamed).
void write_sweep_files(const SweepData& sweep, const std::filesystem::path& dir);
bool is_sweep_dir(const std::filesystem::path& dir);  ///< has sweep.json
SweepData load_sweep(const std::filesystem::path& dir);

}  // namespace results
