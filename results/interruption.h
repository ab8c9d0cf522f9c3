// A run that stopped before its schedule ended: SIGINT / SIGTERM, --stop-on-saturation, or a run killed outright
// (SIGKILL) whose summary `loadgen report` rebuilt from the records it left. The counts add up:
// scheduled = sent + not sent, and sent = ended + aborted.
#pragma once

#include <cstdint>
#include <string>

namespace results {

struct Interruption {
  std::string cause;     ///< "SIGINT" | "SIGTERM" | "saturated" | "killed" (rebuilt from the records)
  double at_s = 0;       ///< when it was stopped, seconds from the run start (0 when unknown)
  int64_t scheduled = 0; ///< requests in the schedule
  int64_t sent = 0;      ///< handed to the system under test
  int64_t ended = 0;     ///< ended on their own (ok, failed or rejected)
  int64_t aborted = 0;   ///< sent, then cut off: failed "interrupted" (a second signal, or the drain timeout);
                         ///< for a killed run, the sent requests that left no record
};

}  // namespace results
