// report.html's section for one sweep: its table of cells (batch size x target rate, or x requests in flight),
// the `--qps auto` search and its probes, throughput and p99 latencies against the rate per batch size, and the
// sweep's settings.
#pragma once

#include <cstddef>
#include <string>

#include "results/sweep.h"

namespace reports {

/// The section of the index-th sweep on the page (its chart ids are "sweep<index>-...").
std::string sweep_section_html(const results::SweepData& s, size_t index);

}  // namespace reports
