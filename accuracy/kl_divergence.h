// KL divergence of two dense logit rows, the one definition acc_allclose reports (allclose.cc) and
// bench/bf16_error_budget prices rounding with: p = softmax(base), q = softmax(candidate), summed in float64.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

namespace accuracy {

/// log Σ exp(row), stable: max + log Σ exp(row − max), in float64.
template <typename T>
double log_sum_exp(const T* row, int n) {
  double m = -std::numeric_limits<double>::infinity();
  for (int i = 0; i < n; ++i) m = std::max(m, static_cast<double>(row[i]));
  double s = 0;
  for (int i = 0; i < n; ++i) s += std::exp(static_cast<double>(row[i]) - m);
  return m + std::log(s);
}

/// KL(p || q) with p = softmax(base row), q = softmax(candidate row), in nats; +inf if either row is not all
/// finite.
template <typename T>
double kl_divergence(const T* base, const T* cand, int n) {
  for (int i = 0; i < n; ++i)
    if (!std::isfinite(base[i]) || !std::isfinite(cand[i])) return std::numeric_limits<double>::infinity();
  const double lse_p = log_sum_exp(base, n), lse_q = log_sum_exp(cand, n);
  double kl = 0;
  for (int i = 0; i < n; ++i) {
    const double log_p = static_cast<double>(base[i]) - lse_p, log_q = static_cast<double>(cand[i]) - lse_q;
    kl += std::exp(log_p) * (log_p - log_q);
  }
  return std::max(kl, 0.0);  // rounding can leave a tiny negative for identical rows
}

}  // namespace accuracy
