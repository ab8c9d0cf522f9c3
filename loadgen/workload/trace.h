// Trace replay: arrival times taken from a recorded trace instead of drawn (vLLM's timed-trace replay,
// guidellm's and AIPerf's replay profiles). The prompts still come from the dataset.
//
// A trace file is either
//   - text, one arrival time in seconds per line (blank lines and lines starting with '#' skipped), or
//   - JSON lines with a numeric "timestamp" in milliseconds (the Mooncake trace format; other fields ignored).
// Times must not decrease; they are shifted so the first arrival is at 0.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace loadgen {

/// A trace file could not be read or is malformed; what() names the file and line.
struct TraceError : std::runtime_error { using std::runtime_error::runtime_error; };

struct Trace {
  std::string path;
  std::string format;          ///< "seconds" | "jsonl-ms"
  std::vector<double> times;   ///< seconds from the first arrival (times[0] == 0)
};

/// Throws TraceError (no arrivals, a bad line, a time earlier than the one before).
Trace load_trace(const std::string& path);
Trace parse_trace(const std::string& text, const std::string& name);

/// The first n arrival times of the trace, scaled so that their mean rate ((n - 1) / last time) is `rate`;
/// rate 0 keeps the recorded times. Throws std::invalid_argument when the trace is shorter than n, or when a
/// rate is asked of n arrivals that span no time.
std::vector<double> trace_times(const Trace& trace, int64_t n, double rate = 0);

/// The mean rate of the first n arrivals, (n - 1) / span; +inf when they span no time.
double trace_rate(const Trace& trace, int64_t n);

}  // namespace loadgen
