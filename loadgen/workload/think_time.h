// A multi-turn user's pause between reading an answer and sending the next message (--think-time): a
// constant, or drawn (seeded) from an exponential or uniform distribution. Drawn up front, one per turn, so
// a seed reproduces the run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/enum_names.h"

namespace loadgen {

enum class ThinkKind { kConstant, kExponential, kUniform };
inline constexpr auto kThinkKindNames = common::enum_names<ThinkKind>(
    {{ThinkKind::kConstant, "constant"}, {ThinkKind::kExponential, "exp"}, {ThinkKind::kUniform, "uniform"}});

struct ThinkTime {
  ThinkKind kind = ThinkKind::kConstant;
  double a = 0;  ///< constant: the seconds; exp: the mean; uniform: the low end
  double b = 0;  ///< uniform: the high end
};

/// "2" or "2s" (constant), "500ms", "exp:2" (exponential, mean 2 s), "uniform:1,3" (seconds in [1, 3]).
/// Throws std::invalid_argument naming --think-time.
ThinkTime parse_think_time(const std::string& text);
/// The form parse_think_time takes ("exp:2").
std::string to_string(const ThinkTime& t);

/// n pauses in seconds (>= 0), seeded.
std::vector<double> think_times(int64_t n, const ThinkTime& t, uint64_t seed);

}  // namespace loadgen
