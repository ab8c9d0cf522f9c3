// Settings -> RunConfig: every option the user gave, as text, parsed and checked exactly once into the typed
// configuration the rest of loadgen takes (loadgen/run/run_config.h). The one place option strings are read.
#pragma once

#include <string>

#include "loadgen/cli/settings.h"
#include "loadgen/run/run_config.h"
#include "loadgen/sweep/sweep.h"

namespace loadgen {

/// Throws std::invalid_argument naming the option (and the file, for --dataset/--reference that do not exist)
/// for the first bad value. Seeds left at -1 are derived from --seed: arrival = seed, sample = seed + 1,
/// sampling = seed + 2.
RunConfig resolve(const RunSettings& settings);

/// A sweep's grid or search from its own options over the base run `base` (resolved from `run`): batch sizes
/// (a remote server has one row, batch size 0), rates or the --qps auto search, and the settings sweep.json
/// records. Throws std::invalid_argument naming the option.
SweepSpec resolve_sweep(const SweepSettings& sweep, const RunSettings& run, const RunConfig& base);

/// "ttft=200ms,tpot=50ms" (units ms or s; either key optional) -> Slo; throws std::invalid_argument naming --slo.
results::Slo parse_slo(const std::string& text);

/// -X: a number > 0 or "inf" (any case); throws std::invalid_argument naming -X/--rate.
double parse_rate(const std::string& text);

}  // namespace loadgen
