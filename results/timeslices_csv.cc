#include "results/timeslices_csv.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "results/files.h"
#include "results/json_fields.h"
#include "results/requests_csv.h"

namespace results {
namespace {

std::string cell(double v, const char* format) {
  if (std::isnan(v)) return "";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace

const char* timeslices_csv_header() {
  return "start_s,end_s,requests_started,requests_ended,output_tok_per_s,ttft_p50_ms,ttft_p99_ms,tpot_p50_ms,tpot_p99_ms";
}

std::string timeslices_csv(const std::vector<Timeslice>& slices) {
  std::string out = std::string(timeslices_csv_header()) + "\n";
  for (const Timeslice& t : slices)
    out += cell(t.start_s, "%.6f") + ',' + cell(t.end_s, "%.6f") + ',' + std::to_string(t.started) + ',' +
           std::to_string(t.ended) + ',' + cell(t.output_tokens_per_s, "%.3f") + ',' + cell(t.ttft_p50_ms, "%.6f") + ',' +
           cell(t.ttft_p99_ms, "%.6f") + ',' + cell(t.tpot_p50_ms, "%.6f") + ',' + cell(t.tpot_p99_ms, "%.6f") + '\n';
  return out;
}

void write_timeslices_csv(const std::filesystem::path& path, const std::vector<Timeslice>& slices) {
  write_file_atomically(path, timeslices_csv(slices));
}

std::vector<Timeslice> parse_timeslices_csv(const std::string& text, const std::string& name) {
  size_t pos = 0;
  const std::vector<std::string> header = next_csv_record(text, &pos);
  const std::string head = timeslices_csv_header();
  size_t head_pos = 0;
  const std::vector<std::string> want = next_csv_record(head, &head_pos);
  if (header != want) json_fields::fail(name, std::string("header is not ") + timeslices_csv_header());
  std::vector<Timeslice> out;
  for (int rec = 2; pos < text.size(); ++rec) {
    const std::vector<std::string> c = next_csv_record(text, &pos);
    if (c.size() == 1 && c[0].empty()) continue;
    const std::string where = name + " record " + std::to_string(rec);
    if (c.size() != want.size())
      json_fields::fail(where, std::to_string(c.size()) + " fields, header has " + std::to_string(want.size()));
    auto num = [&](size_t i) {
      if (c[i].empty()) return std::numeric_limits<double>::quiet_NaN();
      char* end = nullptr;
      const double v = std::strtod(c[i].c_str(), &end);
      if (end == c[i].c_str() || *end != '\0') json_fields::fail(where, "field \"" + want[i] + "\" is not a number");
      return v;
    };
    Timeslice t;
    t.start_s = num(0);
    t.end_s = num(1);
    t.started = static_cast<int64_t>(num(2));
    t.ended = static_cast<int64_t>(num(3));
    t.output_tokens_per_s = num(4);
    t.ttft_p50_ms = num(5);
    t.ttft_p99_ms = num(6);
    t.tpot_p50_ms = num(7);
    t.tpot_p99_ms = num(8);
    out.push_back(t);
  }
  return out;
}

}  // namespace results
