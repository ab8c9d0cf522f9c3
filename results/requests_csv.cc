#include "results/requests_csv.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "results/files.h"
#include "results/json_fields.h"
#include "results/requests_jsonl.h"

namespace results {
namespace {

template <typename T>
std::string num(const std::optional<T>& v, const char* format) {
  if (!v) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, *v);
  return buf;
}

}  // namespace

const char* requests_csv_header() {
  return "index,sample_id,status,error,scheduled_s,send_s,first_token_s,end_s,prompt_tokens,output_tokens,"
         "ttft_ms,tpot_ms,e2el_ms";
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::vector<std::string> next_csv_record(const std::string& text, size_t* pos) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  size_t i = *pos;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') fields.back() += '"', ++i;
      else if (c == '"') quoted = false;
      else fields.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c == '\n') {
      ++i;
      break;
    } else if (c != '\r') {
      fields.back() += c;
    }
  }
  *pos = i;
  return fields;
}

std::string requests_csv_row(const RequestRow& r) {
  // Seconds to the microsecond, milliseconds to the nanosecond: recomputing from the file matches the summary.
  std::string line = std::to_string(r.index) + ',' + std::to_string(r.sample_id) + ',' + to_string(r.status) + ',' +
                     csv_field(r.error) + ',' + num(std::optional<double>(r.scheduled_s), "%.6f") + ',' +
                     num(r.send_s, "%.6f") + ',' + num(r.first_token_s, "%.6f") + ',' + num(r.end_s, "%.6f") + ',' +
                     num(r.prompt_tokens, "%d") + ',' + num(r.output_tokens, "%d") + ',' + num(r.ttft_ms, "%.6f") +
                     ',' + num(r.tpot_ms, "%.6f") + ',' + num(r.e2el_ms, "%.6f") + '\n';
  return line;
}

void write_requests_csv(std::ostream& out, const std::vector<RequestRow>& rows) {
  out << requests_csv_header() << '\n';
  for (const auto& r : rows) out << requests_csv_row(r);
}

void write_requests_csv(const std::filesystem::path& path, const std::vector<RequestRow>& rows) {
  std::ostringstream o;
  write_requests_csv(o, rows);
  write_file_atomically(path, o.str());
}

std::vector<RequestRow> parse_requests_csv(const std::string& text, const std::string& name) {
  size_t pos = 0;
  const std::vector<std::string> header = next_csv_record(text, &pos);
  std::vector<RequestRow> rows;
  for (int rec_no = 2; pos < text.size(); ++rec_no) {
    const std::vector<std::string> cells = next_csv_record(text, &pos);
    if (cells.size() == 1 && cells[0].empty()) continue;
    const std::string where = name + " record " + std::to_string(rec_no);
    if (cells.size() != header.size())
      json_fields::fail(where, std::to_string(cells.size()) + " fields, header has " + std::to_string(header.size()));
    // The record as the JSON object requests.jsonl would hold, so one reader checks both formats.
    nlohmann::json o = nlohmann::json::object();
    for (size_t i = 0; i < header.size(); ++i) {
      if (cells[i].empty()) continue;
      if (header[i] == "status" || header[i] == "error") {
        o[header[i]] = cells[i];
        continue;
      }
      char* end = nullptr;
      const double v = std::strtod(cells[i].c_str(), &end);
      if (end == cells[i].c_str() || *end != '\0') json_fields::fail(where, "field \"" + header[i] + "\" is not a number");
      o[header[i]] = v;
    }
    rows.push_back(request_from_json(o, where));
  }
  return rows;
}

}  // namespace results
