#include "engine/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace engine {

TokenLogprobs token_logprobs(std::span<const float> logits, int32_t token, int k) {
  TokenLogprobs out;
  out.token = token;
  const size_t n = logits.size();
  if (n == 0) {
    out.logprob = std::numeric_limits<double>::quiet_NaN();
    return out;
  }
  double m = -std::numeric_limits<double>::infinity();
  bool nan = false;
  for (float x : logits) {
    if (std::isnan(x)) nan = true;
    m = std::max(m, static_cast<double>(x));
  }
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - m);
  const double lse = nan ? std::numeric_limits<double>::quiet_NaN() : m + std::log(sum);
  const bool in_vocab = token >= 0 && static_cast<size_t>(token) < n;
  const float chosen = in_vocab ? logits[static_cast<size_t>(token)] : std::numeric_limits<float>::quiet_NaN();
  out.logprob = static_cast<double>(chosen) - lse;
  int rank = 1;
  if (in_vocab)
    for (float x : logits) rank += x > chosen;
  out.rank = rank;

  const size_t kk = k <= 0 ? 0 : std::min(static_cast<size_t>(k), n);
  if (kk == 0) return out;
  // "a before b": more likely, or as likely with the lower id. A min-heap of the best kk under that order.
  auto better = [&](int32_t a, int32_t b) {
    const float xa = logits[static_cast<size_t>(a)], xb = logits[static_cast<size_t>(b)];
    return xa > xb || (xa == xb && a < b);
  };
  std::vector<int32_t> heap;
  heap.reserve(kk);
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<int32_t>(i);
    if (heap.size() < kk) {
      heap.push_back(id);
      std::push_heap(heap.begin(), heap.end(), better);
    } else if (better(id, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = id;
      std::push_heap(heap.begin(), heap.end(), better);
    }
  }
  std::sort(heap.begin(), heap.end(), better);
  out.top.reserve(kk);
  for (int32_t id : heap) out.top.push_back({id, static_cast<double>(logits[static_cast<size_t>(id)]) - lse});
  return out;
}

}  // namespace engine
