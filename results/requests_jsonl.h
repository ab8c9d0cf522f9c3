// requests.jsonl (docs/formats.md): one JSON object per scheduled request, with every chunk's time.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "results/request_row.h"

namespace results {

/// The row as a JSON object (tests and readers that want a DOM); append_request_jsonl writes the same object.
nlohmann::json request_to_json(const RequestRow& r);
/// Appends the row's requests.jsonl line (with its '\n'): the object request_to_json gives, written straight as
/// text (results/json_text.h), cheap enough to run on the client's thread for every ended request.
void append_request_jsonl(std::string& out, const RequestRow& r);
/// Throws std::runtime_error "<where>: ..." for a missing index or status, or a field of the wrong type.
RequestRow request_from_json(const nlohmann::json& o, const std::string& where);

void write_requests_jsonl(std::ostream& out, const std::vector<RequestRow>& rows);
void write_requests_jsonl(const std::filesystem::path& path, const std::vector<RequestRow>& rows);
/// Rows from the text of a requests.jsonl; `name` (the file) is used in error messages with the line.
std::vector<RequestRow> parse_requests_jsonl(const std::string& text, const std::string& name);

}  // namespace results
