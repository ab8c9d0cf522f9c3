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
  std::vector<double> gaps(static_cast<size_t>(std::max<int64_t>(n, 0)), 0.0);
  if (std::isinf(o.rate)) return gaps;
  std::mt19937_64 rng(o.seed);
  switch (o.kind) {
    case ArrivalKind::kPoisson: {
      std::exponential_distribution<double> d(o.rate);
      for (auto& g : gaps) g = d(rng);
      break;
    }
    case ArrivalKind::kConstant:
      for (auto& g : gaps) g = 1.0 / o.rate;
      break;
    case ArrivalKind::kGamma: {
      // Mean shape·scale = 1/rate whatever the shape (vLLM's --burstiness).
      std::gamma_distribution<double> d(o.burstiness, 1.0 / (o.rate * o.burstiness));
      for (auto& g : gaps) g = d(rng);
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
