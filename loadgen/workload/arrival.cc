// Seeded arrival gaps. std::mt19937_64 and libstdc++'s distributions make a seed reproduce the same schedule.
#include "loadgen/workload/arrival.h"

#include <cmath>
#include <random>
#include <stdexcept>

namespace loadgen {

std::vector<double> arrival_gaps(int64_t n, const ArrivalOptions& o) {
  if (!(o.rate > 0)) throw std::invalid_argument("request rate must be > 0 (or inf), got " + std::to_string(o.rate));
  if (o.kind == ArrivalKind::kGamma && !(o.burstiness > 0))
    throw std::invalid_argument("--burstiness must be > 0, got " + std::to_string(o.burstiness));
  if (o.ramp != RampUp::kNone && (std::isinf(o.rate) || !(o.ramp_start_rate > 0)))
    throw std::invalid_argument("--ramp-up needs a finite -X and --ramp-start-rate > 0");
  std::vector<double> gaps(static_cast<size_t>(std::max<int64_t>(n, 0)), 0.0);
  if (std::isinf(o.rate)) return gaps;
  std::mt19937_64 rng(o.seed);
  // The rate of gap i: the target, or the ramp's rate at i/(n-1) of the way.
  auto rate_at = [&](size_t i) {
    if (o.ramp == RampUp::kNone || gaps.size() < 2) return o.ramp == RampUp::kNone ? o.rate : o.ramp_start_rate;
    const double f = static_cast<double>(i) / static_cast<double>(gaps.size() - 1);
    if (o.ramp == RampUp::kLinear) return o.ramp_start_rate + (o.rate - o.ramp_start_rate) * f;
    return o.ramp_start_rate * std::pow(o.rate / o.ramp_start_rate, f);
  };
  // One distribution object per run, given each gap's rate as a parameter: libstdc++'s gamma keeps state
  // between draws, and without a ramp this draws exactly what one fixed-rate distribution draws.
  switch (o.kind) {
    case ArrivalKind::kPoisson: {
      std::exponential_distribution<double> d(o.rate);
      for (size_t i = 0; i < gaps.size(); ++i) gaps[i] = d(rng, decltype(d)::param_type(rate_at(i)));
      break;
    }
    case ArrivalKind::kConstant:
      for (size_t i = 0; i < gaps.size(); ++i) gaps[i] = 1.0 / rate_at(i);
      break;
    case ArrivalKind::kGamma: {
      // Mean shape·scale = 1/rate whatever the shape (vLLM's --burstiness).
      std::gamma_distribution<double> d(o.burstiness, 1.0 / (o.rate * o.burstiness));
      for (size_t i = 0; i < gaps.size(); ++i)
        gaps[i] = d(rng, decltype(d)::param_type(o.burstiness, 1.0 / (rate_at(i) * o.burstiness)));
      break;
    }
  }
  return gaps;
}

std::vector<double> arrival_times(int64_t n, const ArrivalOptions& o) {
  std::vector<double> times(static_cast<size_t>(std::max<int64_t>(n, 0)), 0.0);
  if (n <= 1) return times;
  std::vector<double> gaps = arrival_gaps(n - 1, o);
  for (size_t i = 1; i < times.size(); ++i) times[i] = times[i - 1] + gaps[i - 1];
  return times;
}

}  // namespace loadgen
