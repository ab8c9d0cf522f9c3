#include "loadgen/workload/trace.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "common/parse_number.h"

namespace loadgen {
namespace {

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r") - a + 1);
}

}  // namespace

Trace parse_trace(const std::string& text, const std::string& name) {
  Trace t;
  t.path = name;
  std::istringstream in(text);
  std::string raw;
  int64_t line_no = 0;
  double first = 0, last = -std::numeric_limits<double>::infinity();
  while (std::getline(in, raw)) {
    ++line_no;
    const std::string line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    const std::string where = name + ":" + std::to_string(line_no) + ": ";
    double v = 0;
    if (line[0] == '{') {
      if (t.format.empty()) t.format = "jsonl-ms";
      if (t.format != "jsonl-ms") throw TraceError(where + "a JSON line in a file of plain times");
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded()) throw TraceError(where + "not valid JSON");
      if (!j.contains("timestamp") || !j["timestamp"].is_number())
        throw TraceError(where + "no numeric \"timestamp\" (milliseconds)");
      v = j["timestamp"].get<double>() / 1000.0;
    } else {
      if (t.format.empty()) t.format = "seconds";
      if (t.format != "seconds") throw TraceError(where + "a plain time in a file of JSON lines");
      const std::optional<double> number = common::parse_double(line);
      if (!number) throw TraceError(where + "expected a time in seconds, got '" + line + "'");
      v = *number;
    }
    if (!std::isfinite(v)) throw TraceError(where + "the time is not finite");
    if (v < last) throw TraceError(where + "time " + std::to_string(v) + " s is earlier than the line before");
    if (t.times.empty()) first = v;
    last = v;
    t.times.push_back(v - first);
  }
  if (t.times.empty()) throw TraceError(name + ": no arrival times");
  return t;
}

Trace load_trace(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw TraceError(path + ": cannot open the trace file");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_trace(ss.str(), path);
}

double trace_rate(const Trace& trace, int64_t n) {
  if (n < 1 || n > static_cast<int64_t>(trace.times.size())) return 0;
  const double span = trace.times[static_cast<size_t>(n - 1)];
  return span > 0 ? static_cast<double>(n - 1) / span : std::numeric_limits<double>::infinity();
}

std::vector<double> trace_times(const Trace& trace, int64_t n, double rate) {
  if (n > static_cast<int64_t>(trace.times.size()))
    throw std::invalid_argument("--trace " + trace.path + ": holds " + std::to_string(trace.times.size()) +
                                " arrivals, fewer than the " + std::to_string(n) + " requests asked for");
  std::vector<double> out(trace.times.begin(), trace.times.begin() + std::max<int64_t>(n, 0));
  if (rate > 0 && n > 1) {
    const double recorded = trace_rate(trace, n);
    if (std::isinf(recorded))
      throw std::invalid_argument("--trace " + trace.path + ": its first " + std::to_string(n) +
                                  " arrivals span no time, so -X cannot rescale them");
    for (double& t : out) t *= recorded / rate;
  }
  return out;
}

}  // namespace loadgen
