// requests.csv (docs/formats.md): one row per scheduled request, empty cells where a value does not exist,
// RFC 4180 quoting. No chunk times (requests.jsonl has them).
#pragma once

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "results/request_row.h"

namespace results {

/// The header line, without newline.
const char* requests_csv_header();
/// RFC 4180 quoting: quotes a field holding a comma, quote or line break.
std::string csv_field(const std::string& s);
/// One CSV record from `text` at *pos (quoted fields may hold commas, doubled quotes and newlines); *pos moves
/// past its line end.
std::vector<std::string> next_csv_record(const std::string& text, size_t* pos);

/// One record with its line end (the columns of requests_csv_header()), appended to `out`.
void append_requests_csv_row(std::string& out, const RequestRow& row);
/// The same record as a string.
std::string requests_csv_row(const RequestRow& row);

void write_requests_csv(std::ostream& out, const std::vector<RequestRow>& rows);
void write_requests_csv(const std::filesystem::path& path, const std::vector<RequestRow>& rows);
/// Rows from the text of a requests.csv (columns found by the header's names); `name` is used in errors.
std::vector<RequestRow> parse_requests_csv(const std::string& text, const std::string& name);

}  // namespace results
