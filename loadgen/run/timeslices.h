// The run over time (timeslices.csv, results/timeslice.h) and its steady window (--steady-state), both from the
// per-request rows, so `loadgen report` can recompute them from a saved requests.jsonl.
#pragma once

#include <optional>
#include <vector>

#include "results/request_row.h"
#include "results/summary.h"
#include "results/timeslice.h"

namespace loadgen {

/// Slices of `width_s` from t = 0 to the last event (send, chunk or end) of any row.
std::vector<results::Timeslice> timeslices(const std::vector<results::RequestRow>& rows, double width_s);

/// The steady window: from the first moment the requests in flight reach their plateau (the median in-flight
/// level over the second half of the arrivals) to the last arrival; the percentiles over the ok requests
/// scheduled within it. Empty when the window holds no ok request.
std::optional<results::SteadyState> steady_state(const std::vector<results::RequestRow>& rows);

}  // namespace loadgen
