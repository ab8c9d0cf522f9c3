// The dispatcher: sends each request at its scheduled time (sleeping until then), optionally keeping at most
// C in flight. Latency still counts from the scheduled arrival, so waiting for a slot shows up as latency and
// as send lag rather than disappearing (no coordinated omission).
#pragma once

#include <atomic>
#include <vector>

#include "loadgen/clients/client.h"
#include "loadgen/run/recorder.h"

namespace loadgen {

struct DispatchOptions {
  int max_concurrency = 0;  ///< 0: open loop
  /// With max_concurrency: a closed loop (`loadgen sweep --concurrency`): a request arrives when its slot
  /// frees, so its latency counts from then (its scheduled time becomes its send time), not from t = 0.
  bool closed_loop = false;
  /// Sleep until this long before the send time, then yield-spin: sleep alone overshoots by ~0.1 ms.
  std::chrono::microseconds spin = std::chrono::microseconds(200);
};

/// Sends items[i] at t0 + arrival_s[i] in order, on the calling thread. A send that throws ends that request
/// as failed. `stop` (may be null) ends the dispatch early; unsent requests stay unsent (and later count as
/// failed "not sent"). Returns the number of requests handed to the client.
int64_t dispatch(Client& client, Recorder& recorder, const std::vector<WorkItem>& items,
                 const std::vector<double>& arrival_s, Clock::time_point t0, const DispatchOptions& options,
                 const std::atomic<bool>* stop);

}  // namespace loadgen
