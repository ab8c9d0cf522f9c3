// A summary recomputed from a run directory's records: for a run that never wrote its summary.json (killed
// with SIGKILL, or the machine went down), from settings.json (written at the start) and the requests.jsonl rows
// appended as requests ended. Requests of the schedule that left no record count as failed "no record".
#pragma once

#include <filesystem>

#include "results/summary.h"
#include "results/timeslice.h"

namespace loadgen {

/// True when `dir` has settings.json but no summary.json: a run that did not finish.
bool is_unfinished_run_dir(const std::filesystem::path& dir);

/// Recomputes the summary (marked interrupted, cause "killed") from settings.json and requests.jsonl (or
/// requests.csv). Throws std::runtime_error naming the file and line that is malformed.
/// With `timeslices` (may be null), also the run's timeslices.csv rows over the records (10 s or the run's
/// --timeslice).
results::Summary recompute_summary(const std::filesystem::path& dir,
                                   std::vector<results::Timeslice>* timeslices = nullptr);

}  // namespace loadgen
