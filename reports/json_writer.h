// summary.json and requests.jsonl (docs/formats.md). Non-finite numbers (a rate of inf, +inf latencies under
// --failures-as-inf) are written as the string "inf", since JSON has no infinity.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "loadgen/results.h"

namespace reports {

nlohmann::json summary_to_json(const loadgen::Summary& s);
nlohmann::json request_to_json(const loadgen::RequestRow& r);
void write_requests_jsonl(std::ostream& out, const std::vector<loadgen::RequestRow>& rows);
/// Write to files; throw std::runtime_error naming the file on failure.
void write_summary_json(const std::string& path, const loadgen::Summary& s);
void write_requests_jsonl(const std::string& path, const std::vector<loadgen::RequestRow>& rows);

}  // namespace reports
