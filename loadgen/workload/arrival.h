// Arrival schedules, computed up front (MLPerf LoadGen's Server scenario, vLLM's get_request): times in
// seconds from the run start, the first at 0. Each schedule has its own seeded random stream.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/enum_names.h"

namespace loadgen {

enum class ArrivalKind { kPoisson, kConstant, kGamma };

inline constexpr auto kArrivalKindNames = common::enum_names<ArrivalKind>(
    {{ArrivalKind::kPoisson, "poisson"}, {ArrivalKind::kConstant, "constant"}, {ArrivalKind::kGamma, "gamma"}});
inline const char* to_string(ArrivalKind k) { return kArrivalKindNames.name(k); }

/// vLLM's --ramp-up-strategy: the rate grows from ramp_start_rate to the target over the run's requests.
enum class RampUp { kNone, kLinear, kExponential };
inline constexpr auto kRampUpNames = common::enum_names<RampUp>(
    {{RampUp::kNone, "none"}, {RampUp::kLinear, "linear"}, {RampUp::kExponential, "exponential"}});
inline const char* to_string(RampUp r) { return kRampUpNames.name(r); }

struct ArrivalOptions {
  double rate = 5.0;        ///< requests/s; +inf: every request at t = 0 (offline throughput test)
  ArrivalKind kind = ArrivalKind::kPoisson;
  double burstiness = 1.0;  ///< gamma shape k (1 = Poisson, < 1 burstier, > 1 more regular); gaps have mean 1/rate
  uint64_t seed = 0;        ///< seed of the gap stream only
  /// Ramp-up: gap i (of n) is drawn at the rate start + (rate - start)·i/(n-1) (linear) or
  /// start·(rate/start)^(i/(n-1)) (exponential), as vLLM's get_request does; needs a finite rate.
  RampUp ramp = RampUp::kNone;
  double ramp_start_rate = 1.0;  ///< requests/s at the first arrival (> 0)
};

/// Gaps between consecutive arrivals: exponential(rate), 1/rate, or Gamma(k, 1/(rate·k)), at the ramp's rate
/// of each gap when ramping. n gaps.
std::vector<double> arrival_gaps(int64_t n, const ArrivalOptions& options);

/// n arrival times: 0, g0, g0+g1, ...; all zeros for rate = +inf.
std::vector<double> arrival_times(int64_t n, const ArrivalOptions& options);

}  // namespace loadgen
