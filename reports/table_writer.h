// The summary as a terminal table (stdout): counts that add up to N, Exec Time, rates, the latency table,
// and whether the run kept up (with the reasons when it did not).
#pragma once

#include <ostream>

#include "results/summary.h"

namespace reports {

void write_summary_table(std::ostream& out, const results::Summary& s);

}  // namespace reports
