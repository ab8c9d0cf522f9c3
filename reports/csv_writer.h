// requests.csv (docs/formats.md): one row per scheduled request, empty cells where a value does not exist.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "loadgen/results.h"

namespace reports {

/// The header line, without newline.
const char* requests_csv_header();
/// RFC 4180 quoting: quotes a field holding a comma, quote or line break.
std::string csv_field(const std::string& s);
void write_requests_csv(std::ostream& out, const std::vector<loadgen::RequestRow>& rows);
/// Writes to `path`; throws std::runtime_error naming the file when it cannot be written.
void write_requests_csv(const std::string& path, const std::vector<loadgen::RequestRow>& rows);

}  // namespace reports
