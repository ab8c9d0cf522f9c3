#include "reports/csv_writer.h"

#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace reports {
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

void write_requests_csv(std::ostream& out, const std::vector<loadgen::RequestRow>& rows) {
  out << requests_csv_header() << '\n';
  // Seconds to the microsecond, milliseconds to the nanosecond: recomputing from the file matches the summary.
  for (const auto& r : rows) {
    out << r.index << ',' << r.sample_id << ',' << r.status << ',' << csv_field(r.error) << ','
        << num(std::optional<double>(r.scheduled_s), "%.6f") << ',' << num(r.send_s, "%.6f") << ','
        << num(r.first_token_s, "%.6f") << ',' << num(r.end_s, "%.6f") << ',' << num(r.prompt_tokens, "%d") << ','
        << num(r.output_tokens, "%d") << ',' << num(r.ttft_ms, "%.6f") << ',' << num(r.tpot_ms, "%.6f") << ','
        << num(r.e2el_ms, "%.6f") << '\n';
  }
}

void write_requests_csv(const std::string& path, const std::vector<loadgen::RequestRow>& rows) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot open for writing");
  write_requests_csv(f, rows);
  if (!f) throw std::runtime_error(path + ": write failed");
}

}  // namespace reports
