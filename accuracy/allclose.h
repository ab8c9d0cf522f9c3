// Compares two logits files (BASE, NEW) request by request with numpy's allclose rule and says where and by
// how much they differ: the first failing step and vocabulary index, max abs/rel error, top-1 agreement and
// the KL divergence of the softmaxes. Structural problems (missing requests, different prompts, vocab sizes or
// step counts) are reported as errors in the result, never thrown.
#pragma once

#include <string>
#include <vector>

#include "accuracy/logits_file.h"

namespace accuracy {

struct AllcloseOptions {
  double rtol = 1e-3;  ///< |new - base| <= atol + rtol * |base|
  double atol = 1e-3;
  int max_steps = -1;  ///< compare only the first K steps of each request; -1: all
  // Comparisons with a top-K file (topk_compare.h), per request over the steps up to the first divergence:
  double logprob_atol = 0.02;       ///< |Δ logprob| of BASE's chosen token (nats): 0.02 = its probability within ~2%
  double min_top1_agreement = 0.95; ///< fraction of steps whose most likely token is the same on both sides
  double max_kl = 0.01;             ///< KL(BASE || NEW) over the union of the two top-K sets, renormalized (nats)
};

/// The first step that broke a top-K rule: which token, and why.
struct TopKFailure {
  int step = -1;
  int32_t token = 0;            ///< BASE's chosen token there
  double base_logprob = 0, new_logprob = 0;  ///< its logprob on each side (NEW: NaN when not in NEW's top-K)
  double kl = 0;
  std::string why;              ///< "|Δ logprob| 0.3 > 0.02", "KL 0.05 > 0.01"
};

/// The first element that broke the rule, in (step, vocab index) order.
struct FirstFailure {
  int step = -1;
  int index = -1;
  float base = 0, candidate = 0;
};

struct RequestComparison {
  std::string id;
  int steps = 0;                ///< steps compared: min(steps in BASE, steps in NEW, max_steps)
  bool passed = false;
  std::string error;            ///< structural problem (missing, prompt, steps); empty if none
  double max_abs = 0;           ///< max |new - base|; +inf where a NaN or unmatched inf is involved
  double max_rel = 0;           ///< max |new - base| / |base|
  double max_tol_ratio = 0;     ///< max |new - base| / (atol + rtol |base|): <= 1 passes
  FirstFailure first_fail;      ///< step -1 when every element passed
  double top1_agreement = 1;    ///< fraction of compared steps whose argmax agree
  double max_kl = 0;            ///< max over steps of KL(softmax(base) || softmax(new)), nats
  int first_token_mismatch = -1;///< first step whose chosen token differs (-1: none); contexts differ after it
  // top-K comparisons only (top_k > 0: either file is top-K; steps then stop at the first divergence, inclusive):
  int top_k = 0;                ///< K compared (the smaller of the two files' K)
  double max_logprob_diff = 0;  ///< max |Δ logprob| of BASE's chosen token
  double min_overlap = 1;       ///< min over steps of |top-K(BASE) ∩ top-K(NEW)| / K
  TopKFailure topk_fail;        ///< step -1 when every step passed
  int first_top1_mismatch = -1; ///< first step whose most likely tokens differ

  /// One line saying why it failed (empty when it passed), e.g.
  /// "request 3: logits differ at step 2, vocab index 17: base 1.25, new 1.5 (|diff| 0.25 > atol + rtol*|base| = 0.00225)".
  std::string failure_message(const AllcloseOptions& options) const;
};

struct ComparisonReport {
  std::string base_path, new_path;
  AllcloseOptions options;
  int vocab_base = 0, vocab_new = 0;
  int top_k = 0;                            ///< > 0: a top-K comparison (one file or both are top-K)
  std::vector<RequestComparison> requests;  ///< one per id in BASE ∪ NEW, numeric id order
  std::vector<std::string> errors;          ///< every structural problem and failure, as full sentences
  int passed = 0;
  int total() const { return static_cast<int>(requests.size()); }
  bool all_passed() const { return errors.empty() && passed == total(); }
  std::string summary_line() const;         ///< "passed P/N"
};

/// Compares one request's logits (both `vocab` wide); fills everything except a structural `error`.
RequestComparison compare_request(const RequestLogits& base, const RequestLogits& candidate, int vocab,
                                  const AllcloseOptions& options);

/// Compares every request of two open files.
ComparisonReport compare_logits(const LogitsReader& base, const LogitsReader& candidate,
                                const AllcloseOptions& options);

/// Opens both files (throws LogitsFileError for a missing or bad file) and compares them.
ComparisonReport compare_logits_files(const std::string& base_path, const std::string& new_path,
                                      const AllcloseOptions& options);

/// The whole report as JSON (non-finite numbers as the strings "inf"/"nan").
std::string to_json(const ComparisonReport& report);

/// The `worst` worst requests (failed first, then by max_tol_ratio) as an aligned text table.
std::string worst_table(const ComparisonReport& report, int worst);

}  // namespace accuracy
