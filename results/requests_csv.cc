#include "results/requests_csv.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "results/files.h"
#include "results/json_fields.h"
#include "results/requests_jsonl.h"

namespace results {
namespace {

// A cell: empty for no value; a double as %.6f would print it (std::to_chars, no locale, no format parsing).
void cell(std::string& out, const std::optional<double>& v) {
  if (!v) return;
  if (!std::isfinite(*v)) {
    out += std::isnan(*v) ? "nan" : (*v > 0 ? "inf" : "-inf");
    return;
  }
  char buf[352];  // %.6f of the largest double: 309 digits, the point and 6 decimals
  const auto r = std::to_chars(buf, buf + sizeof buf, *v, std::chars_format::fixed, 6);
  out.append(buf, r.ptr);
}

template <typename T>
  requires std::is_integral_v<T>
void cell(std::string& out, const std::optional<T>& v) {
  if (!v) return;
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, *v);
  out.append(buf, r.ptr);
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

void append_requests_csv_row(std::string& out, const RequestRow& r) {
  // Seconds to the microsecond, milliseconds to the nanosecond: recomputing from the file matches the summary.
  cell(out, std::optional<uint64_t>(r.index));
  out += ',';
  cell(out, std::optional<int64_t>(r.sample_id));
  out += ',';
  out += to_string(r.status);
  out += ',';
  out += csv_field(r.error);
  for (const std::optional<double>& t : {std::optional<double>(r.scheduled_s), r.send_s, r.first_token_s, r.end_s}) {
    out += ',';
    cell(out, t);
  }
  out += ',';
  cell(out, r.prompt_tokens);
  out += ',';
  cell(out, r.output_tokens);
  for (const std::optional<double>& ms : {r.ttft_ms, r.tpot_ms, r.e2el_ms}) {
    out += ',';
    cell(out, ms);
  }
  out += '\n';
}

std::string requests_csv_row(const RequestRow& r) {
  std::string line;
  append_requests_csv_row(line, r);
  return line;
}

void write_requests_csv(std::ostream& out, const std::vector<RequestRow>& rows) {
  out << requests_csv_header() << '\n';
  std::string line;
  for (const auto& r : rows) {
    line.clear();
    append_requests_csv_row(line, r);
    out << line;
  }
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
