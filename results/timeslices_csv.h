// timeslices.csv (docs/formats.md): header start_s,end_s,requests_started,requests_ended,output_tok_per_s,
// ttft_p50_ms,ttft_p99_ms,tpot_p50_ms,tpot_p99_ms; one row per slice; empty cells where no value exists.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "results/timeslice.h"

namespace results {

const char* timeslices_csv_header();
std::string timeslices_csv(const std::vector<Timeslice>& slices);
/// Atomic (tmp + rename). Throws std::runtime_error naming the file.
void write_timeslices_csv(const std::filesystem::path& path, const std::vector<Timeslice>& slices);
/// Throws std::runtime_error "<name> record N: ..." for a row that does not parse.
std::vector<Timeslice> parse_timeslices_csv(const std::string& text, const std::string& name);

}  // namespace results
