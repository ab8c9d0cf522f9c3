// Comparisons where one side (or both) holds only the top-K log-probabilities a server returned (version-2
// logits files): dense with top-K and top-K with top-K. A dense side is reduced to the same view by a float64
// log-softmax of its row. Per step s, up to and including the first step whose chosen tokens differ (after it
// the contexts differ, so nothing later is comparable):
//   top-1       BASE's most likely token is NEW's most likely token
//   Δ logprob   |logprob_NEW(t) − logprob_BASE(t)| for BASE's chosen token t (NEW: exact when dense, else its
//               chosen token's or top-K entry; absent from NEW's top-K: +inf)
//   overlap     |top-K(BASE) ∩ top-K(NEW)| / K
//   KL          KL(p || q) over U = top-K(BASE) ∪ top-K(NEW): an id missing from one side gets that side's
//               smallest top-K probability (an upper bound on its true value), then p and q are renormalized
//               over U. An approximation of the full KL; exact in the limit K = vocab.
// A step fails when Δ logprob > logprob_atol or KL > max_kl; a request fails on any failing step, or when its
// top-1 agreement is below min_top1_agreement.
#pragma once

#include "accuracy/allclose.h"

namespace accuracy {

/// Compares one request; `base_k` / `new_k` are the files' top_k (0: dense, `vocab` wide).
RequestComparison compare_topk_request(const RequestLogits& base, int base_k, const RequestLogits& candidate, int new_k,
                                       int vocab, const AllcloseOptions& options);

}  // namespace accuracy
