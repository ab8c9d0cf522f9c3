// The terminal's trust block under the summary table: an interruption, the client's own cost, the steady
// window, each p99 with its upper bound, the SLO judged on the bound, and the VALID / INVALID verdict with every
// reason. Formats the summary's fields; computes nothing.
#pragma once

#include <ostream>

#include "results/summary.h"

namespace reports {

void write_verdict_block(std::ostream& out, const results::Summary& summary);

}  // namespace reports
