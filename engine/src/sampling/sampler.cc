#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace engine {

int32_t Sampler::argmax(std::span<const float> logits) {
  if (logits.empty()) throw std::invalid_argument("Sampler::argmax: empty logits row");
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best] || std::isnan(logits[best])) best = static_cast<int32_t>(i);
  return best;
}

std::vector<double> Sampler::probabilities(std::span<const float> logits, const SamplingParams& params) {
  const size_t vocab = logits.size();
  if (vocab == 0) throw std::invalid_argument("Sampler::probabilities: empty logits row");
  const double inv_t = 1.0 / static_cast<double>(params.temperature);
  if (params.top_k <= 0 && params.top_p >= 1.0f) {  // no truncation: plain softmax, no sort needed
    const double max_scaled = static_cast<double>(logits[argmax(logits)]) * inv_t;
    std::vector<double> out(vocab);
    double total = 0;
    for (size_t i = 0; i < vocab; ++i) total += out[i] = std::exp(static_cast<double>(logits[i]) * inv_t - max_scaled);
    for (double& v : out) v /= total;
    return out;
  }
  // Candidates sorted by logit, highest first; the lower index first among equals (a stable order makes
  // top-k/top-p cut-offs deterministic at ties).
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  auto higher = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  size_t keep = vocab;
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < vocab) {
    keep = static_cast<size_t>(params.top_k);
    std::partial_sort(order.begin(), order.begin() + keep, order.end(), higher);
  } else {
    std::sort(order.begin(), order.end(), higher);
  }
  // softmax over the kept candidates, in double, after temperature scaling
  const double max_scaled = static_cast<double>(logits[order[0]]) * inv_t;
  std::vector<double> p(keep);
  double total = 0;
  for (size_t i = 0; i < keep; ++i) {
    p[i] = std::exp(static_cast<double>(logits[order[i]]) * inv_t - max_scaled);
    total += p[i];
  }
  // top-p: the shortest prefix of the sorted candidates whose mass reaches top_p (at least one token)
  if (params.top_p < 1.0f) {
    double target = static_cast<double>(params.top_p) * total, cum = 0;
    size_t n = 0;
    while (n < keep) {
      cum += p[n++];
      if (cum >= target) break;
    }
    keep = n;
    total = cum;
  }
  std::vector<double> out(vocab, 0.0);
  for (size_t i = 0; i < keep; ++i) out[order[i]] = p[i] / total;
  return out;
}

int32_t Sampler::sample(std::span<const float> logits, const SamplingParams& params, std::mt19937_64& rng) {
  if (params.temperature <= 0.0f) return argmax(logits);
  std::vector<double> p = probabilities(logits, params);
  double u = uniform(rng), cum = 0;
  int32_t last = -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0) continue;
    last = static_cast<int32_t>(i);
    cum += p[i];
    if (u < cum) return last;
  }
  return last;  // u fell in the rounding gap at the top: the last token with mass
}

}  // namespace engine
