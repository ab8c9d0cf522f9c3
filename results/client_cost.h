// What loadgen's own client cost during a run (no peer publishes it): how busy its event loop was (HTTP: the
// curl loop's time outside its poll; in-process: the time in loadgen's callbacks on the engine's thread) and the
// lag from a chunk's arrival (socket readable / engine event) to its record.
#pragma once

#include <cstdint>
#include <string>

namespace results {

struct ClientCost {
  double busy_fraction = 0;     ///< of the run's wall time
  /// The event loop's CPU time over the requests that ended (µs); < 0: not measured (no event loop). One
  /// core's ceiling for this workload is about 1e6 / this requests/s.
  double cpu_per_request_us = -1;
  std::string busy_source;      ///< "event loop" | "callbacks"
  double chunk_lag_p50_ms = 0, chunk_lag_p99_ms = 0, chunk_lag_max_ms = 0;
  int64_t chunks = 0;           ///< chunks the lag is over (a sample: each request's first and every 8th)
};

}  // namespace results
