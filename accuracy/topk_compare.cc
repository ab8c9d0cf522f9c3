#include "accuracy/topk_compare.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "accuracy/text.h"

namespace accuracy {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One step of one side, as log-probabilities.
struct StepView {
  int32_t token = 0;
  int32_t top1 = kNoToken;                     // the first entry as stored (may be kNoToken / kUnmapped)
  std::vector<std::pair<int32_t, double>> top; // real ids only, most likely first
  const float* row = nullptr;                  // dense: the logits row (`vocab` wide), and its log-sum-exp
  int vocab = 0;
  double lse = 0;

  // This side's logprob of `id`: exact when dense, else from the top-K (NaN when it is not there).
  double logprob_of(int32_t id, int32_t chosen, double chosen_lp) const {
    if (row) return id >= 0 && id < vocab ? static_cast<double>(row[id]) - lse : kNaN;
    if (id >= 0 && id == chosen && !std::isnan(chosen_lp)) return chosen_lp;
    for (const auto& [i, lp] : top)
      if (i == id) return lp;
    return kNaN;
  }
};

StepView dense_view(const RequestLogits& r, int s, int vocab, int k) {
  StepView v;
  v.row = r.logits.data() + static_cast<size_t>(s) * vocab;
  v.vocab = vocab;
  double m = -kInf;
  for (int i = 0; i < vocab; ++i) m = std::max(m, static_cast<double>(v.row[i]));
  double sum = 0;
  for (int i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(v.row[i]) - m);
  v.lse = m + std::log(sum);
  std::vector<int32_t> idx(vocab);
  std::iota(idx.begin(), idx.end(), 0);
  const int kk = std::min(k, vocab);
  std::partial_sort(idx.begin(), idx.begin() + kk, idx.end(), [&](int32_t a, int32_t b) {
    return v.row[a] > v.row[b] || (v.row[a] == v.row[b] && a < b);
  });
  for (int i = 0; i < kk; ++i) v.top.emplace_back(idx[i], static_cast<double>(v.row[idx[i]]) - v.lse);
  v.top1 = kk > 0 ? idx[0] : kNoToken;
  v.token = r.tokens[s];
  return v;
}

StepView sparse_view(const RequestLogits& r, int s, int file_k, int k) {
  StepView v;
  v.token = r.tokens[s];
  const int32_t* ids = r.top_ids.data() + static_cast<size_t>(s) * file_k;
  const float* lps = r.top_logprobs.data() + static_cast<size_t>(s) * file_k;
  v.top1 = file_k > 0 ? ids[0] : kNoToken;
  for (int i = 0; i < file_k && static_cast<int>(v.top.size()) < k; ++i)
    if (ids[i] >= 0) v.top.emplace_back(ids[i], lps[i]);
  return v;
}

// KL(p || q) over the union of the two top-K sets, each side's missing ids at its smallest known probability.
double union_kl(const StepView& b, const StepView& n) {
  std::vector<int32_t> ids;
  for (const auto& e : b.top) ids.push_back(e.first);
  for (const auto& e : n.top)
    if (std::find(ids.begin(), ids.end(), e.first) == ids.end()) ids.push_back(e.first);
  if (ids.empty()) return 0;
  auto probs = [&](const StepView& v) {
    double floor_lp = v.top.empty() ? -kInf : v.top.back().second;
    std::vector<double> p;
    for (int32_t id : ids) {
      double lp = v.logprob_of(id, kNoToken, kNaN);
      if (std::isnan(lp)) lp = floor_lp;
      p.push_back(std::exp(lp));
    }
    const double total = std::accumulate(p.begin(), p.end(), 0.0);
    for (double& x : p) x = total > 0 ? x / total : 0;
    return p;
  };
  const std::vector<double> p = probs(b), q = probs(n);
  double kl = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (p[i] <= 0) continue;
    if (q[i] <= 0) return kInf;
    kl += p[i] * (std::log(p[i]) - std::log(q[i]));
  }
  return std::isnan(kl) ? kInf : std::max(kl, 0.0);
}

}  // namespace

RequestComparison compare_topk_request(const RequestLogits& base, int base_k, const RequestLogits& candidate, int new_k,
                                       int vocab, const AllcloseOptions& options) {
  RequestComparison out;
  out.id = base.id;
  const int k = base_k > 0 && new_k > 0 ? std::min(base_k, new_k) : std::max(base_k, new_k);
  out.top_k = k;
  int steps = std::min(base.n_steps(), candidate.n_steps());
  if (options.max_steps >= 0) steps = std::min(steps, options.max_steps);
  int compared = 0, top1_agree = 0;
  for (int s = 0; s < steps; ++s) {
    const StepView b = base_k > 0 ? sparse_view(base, s, base_k, k) : dense_view(base, s, vocab, k);
    const StepView n = new_k > 0 ? sparse_view(candidate, s, new_k, k) : dense_view(candidate, s, vocab, k);
    ++compared;
    const bool agree = b.top1 >= 0 && b.top1 == n.top1;
    top1_agree += agree;
    if (!agree && out.first_top1_mismatch < 0) out.first_top1_mismatch = s;

    const double base_tok_lp = base_k > 0 ? static_cast<double>(base.token_logprobs[s]) : b.logprob_of(b.token, kNoToken, kNaN);
    const double new_chosen_lp = new_k > 0 ? static_cast<double>(candidate.token_logprobs[s]) : kNaN;
    const double new_tok_lp = n.logprob_of(b.token, n.token, new_chosen_lp);
    double diff;
    std::string why;
    if (b.token < 0) {
      diff = kInf, why = "BASE's chosen token did not map to one id";
    } else if (std::isnan(base_tok_lp)) {
      diff = kInf, why = "BASE has no logprob for its chosen token";
    } else if (std::isnan(new_tok_lp)) {
      diff = kInf, why = cat("BASE's token ", b.token, " is not in NEW's top-", k);
    } else {
      diff = std::fabs(new_tok_lp - base_tok_lp);
      if (!(diff <= options.logprob_atol)) why = cat("|diff logprob| ", num(diff), " > --logprob-atol ", num(options.logprob_atol));
    }
    out.max_logprob_diff = std::max(out.max_logprob_diff, diff);
    const double kl = union_kl(b, n);
    out.max_kl = std::max(out.max_kl, kl);
    if (why.empty() && !(kl <= options.max_kl)) why = cat("KL ", num(kl), " > --max-kl ", num(options.max_kl));
    size_t common = 0;
    for (const auto& e : b.top)
      for (const auto& f : n.top) common += e.first == f.first;
    const size_t denom = std::max<size_t>(1, std::min(b.top.size(), n.top.size()));
    out.min_overlap = std::min(out.min_overlap, static_cast<double>(common) / static_cast<double>(denom));
    const double ratio = std::max(options.logprob_atol > 0 ? diff / options.logprob_atol : (diff > 0 ? kInf : 0),
                                  options.max_kl > 0 ? kl / options.max_kl : (kl > 0 ? kInf : 0));
    out.max_tol_ratio = std::max(out.max_tol_ratio, ratio);
    if (!why.empty() && out.topk_fail.step < 0) out.topk_fail = {s, b.token, base_tok_lp, new_tok_lp, kl, why};
    if (base.tokens[s] != candidate.tokens[s]) {  // the contexts differ from here on
      out.first_token_mismatch = s;
      break;
    }
  }
  out.steps = compared;
  out.max_abs = out.max_logprob_diff;
  out.top1_agreement = compared > 0 ? static_cast<double>(top1_agree) / compared : 1.0;
  out.passed = out.topk_fail.step < 0 && out.top1_agreement >= options.min_top1_agreement;
  return out;
}

}  // namespace accuracy
