// acc_allclose's comparison. Per request, over steps s < min(steps in BASE, steps in NEW, --steps) and every
// vocabulary index v of logits[s, v] (shape [n_steps, vocab]):
//   pass(v)  ⇔  |new − base| ≤ atol + rtol·|base|   (numpy.allclose; NaN never passes, ±inf only equals itself)
// evaluated in double so the verdict does not depend on float32 rounding of the tolerance.
#include "accuracy/allclose.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "accuracy/kl_divergence.h"
#include "accuracy/text.h"
#include "accuracy/topk_compare.h"

namespace accuracy {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool is_number(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Numeric ids in numeric order, then the rest in byte order (as LogitsReader::ids()).
bool id_less(const std::string& a, const std::string& b) {
  bool na = is_number(a), nb = is_number(b);
  if (na != nb) return na;
  if (na) {
    auto strip = [](const std::string& s) { size_t i = s.find_first_not_of('0'); return i == std::string::npos ? std::string() : s.substr(i); };
    std::string sa = strip(a), sb = strip(b);
    if (sa.size() != sb.size()) return sa.size() < sb.size();
    if (sa != sb) return sa < sb;
  }
  return a < b;
}

// Index of the largest value (first on ties), NaNs skipped; -1 if the row is all NaN.
int argmax(const float* row, int n) {
  int best = -1;
  for (int i = 0; i < n; ++i)
    if (!std::isnan(row[i]) && (best < 0 || row[i] > row[best])) best = i;
  return best;
}


std::string prefix(const std::string& id) { return "request " + id + ": "; }

}  // namespace

std::string ComparisonReport::summary_line() const { return cat("passed ", passed, "/", total()); }

std::string RequestComparison::failure_message(const AllcloseOptions& options) const {
  if (passed) return "";
  if (!error.empty()) return prefix(id) + error;
  if (top_k > 0) {
    if (topk_fail.step >= 0) {
      const TopKFailure& f = topk_fail;
      return cat(prefix(id), "step ", f.step, ", token ", f.token, ": logprob base ", num(f.base_logprob), ", new ",
                 num(f.new_logprob), ", KL ", num(f.kl), " (", f.why, ")");
    }
    return cat(prefix(id), "top-1 agreement ", num(top1_agreement, "%.3f"), " < --min-top1-agreement ",
               num(options.min_top1_agreement), " (first differs at step ", first_top1_mismatch, ")");
  }
  if (first_fail.step < 0) return prefix(id) + "failed";
  const double b = first_fail.base, c = first_fail.candidate;
  std::string why;
  if (std::isnan(b) || std::isnan(c)) {
    why = "NaN never passes";
  } else if (std::isinf(b) || std::isinf(c)) {
    why = "infinities differ";
  } else {
    why = cat("|diff| ", num(std::fabs(c - b)), " > atol + rtol*|base| = ", num(options.atol + options.rtol * std::fabs(b)));
  }
  return cat(prefix(id), "logits differ at step ", first_fail.step, ", vocab index ", first_fail.index, ": base ",
             num(b), ", new ", num(c), " (", why, ")");
}

RequestComparison compare_request(const RequestLogits& base, const RequestLogits& candidate, int vocab,
                                  const AllcloseOptions& options) {
  RequestComparison out;
  out.id = base.id;
  int steps = std::min(base.n_steps(), candidate.n_steps());
  if (options.max_steps >= 0) steps = std::min(steps, options.max_steps);
  out.steps = steps;
  const size_t need = static_cast<size_t>(steps) * vocab;
  if (base.logits.size() < need || candidate.logits.size() < need || base.tokens.size() < size_t(steps) ||
      candidate.tokens.size() < size_t(steps)) {
    out.error = cat("logits hold fewer than ", steps, " steps x ", vocab, " values");
    return out;
  }
  int top1_agree = 0;
  for (int s = 0; s < steps; ++s) {
    const float* b = base.logits.data() + static_cast<size_t>(s) * vocab;
    const float* c = candidate.logits.data() + static_cast<size_t>(s) * vocab;
    for (int v = 0; v < vocab; ++v) {
      const double bv = b[v], cv = c[v];
      const double tol = options.atol + options.rtol * std::fabs(bv);
      double diff;
      bool ok;
      if (std::isnan(bv) || std::isnan(cv)) {
        diff = kInf, ok = false;
      } else if (std::isinf(bv) || std::isinf(cv)) {
        ok = bv == cv;
        diff = ok ? 0 : kInf;
      } else {
        diff = std::fabs(cv - bv);
        ok = diff <= tol;
      }
      out.max_abs = std::max(out.max_abs, diff);
      if (diff > 0) {
        out.max_rel = std::max(out.max_rel, bv != 0 ? diff / std::fabs(bv) : kInf);
        out.max_tol_ratio = std::max(out.max_tol_ratio, tol > 0 ? diff / tol : kInf);
      }
      if (!ok && out.first_fail.step < 0) out.first_fail = {s, v, b[v], c[v]};
    }
    if (argmax(b, vocab) == argmax(c, vocab)) ++top1_agree;
    out.max_kl = std::max(out.max_kl, kl_divergence(b, c, vocab));
    if (out.first_token_mismatch < 0 && base.tokens[s] != candidate.tokens[s]) out.first_token_mismatch = s;
  }
  out.top1_agreement = steps > 0 ? static_cast<double>(top1_agree) / steps : 1.0;
  out.passed = out.first_fail.step < 0;
  return out;
}

ComparisonReport compare_logits(const LogitsReader& base, const LogitsReader& candidate,
                                const AllcloseOptions& options) {
  ComparisonReport report;
  report.base_path = base.path();
  report.new_path = candidate.path();
  report.options = options;
  report.vocab_base = base.info().vocab_size;
  report.vocab_new = candidate.info().vocab_size;
  const int base_k = base.info().top_k, new_k = candidate.info().top_k;
  const bool topk = base_k > 0 || new_k > 0;
  // A top-K file written by a client records its tokenizer's vocabulary, which may be smaller than the model's
  // (a byte tokenizer on a 512-token model): ids are compared as given, so only dense files must agree.
  const bool same_vocab = report.vocab_base == report.vocab_new || topk;
  if (!same_vocab)
    report.errors.push_back(cat("vocab sizes differ: BASE has ", report.vocab_base, ", NEW has ", report.vocab_new,
                                "; no logits compared"));

  std::vector<std::string> ids = base.ids();
  for (const auto& id : candidate.ids())
    if (!base.has(id)) ids.push_back(id);
  std::sort(ids.begin(), ids.end(), id_less);

  for (const auto& id : ids) {
    RequestComparison rc;
    rc.id = id;
    if (!candidate.has(id)) {
      rc.error = "missing from NEW (" + candidate.path() + ")";
    } else if (!base.has(id)) {
      rc.error = "missing from BASE (" + base.path() + ")";
    } else if (!same_vocab) {
      rc.error = "not compared (vocab sizes differ)";
    } else {
      const RequestLogits b = base.read(id), c = candidate.read(id);
      const int steps_b = options.max_steps >= 0 ? std::min(b.n_steps(), options.max_steps) : b.n_steps();
      const int steps_c = options.max_steps >= 0 ? std::min(c.n_steps(), options.max_steps) : c.n_steps();
      if (b.prompt_sha256 != c.prompt_sha256) {
        rc.error = "prompts differ (prompt_sha256 " + b.prompt_sha256 + " in BASE, " + c.prompt_sha256 + " in NEW)";
      } else if (b.prompt_tokens != c.prompt_tokens) {
        rc.error = "prompt_tokens differ though their prompt_sha256 attributes match";
      } else if (topk) {
        rc = compare_topk_request(b, base_k, c, new_k, base_k > 0 ? report.vocab_new : report.vocab_base, options);
        report.top_k = rc.top_k;
        // After a divergence the step counts may differ (one side stopped at eos): nothing there to compare.
        if (steps_b != steps_c && rc.first_token_mismatch < 0) {
          rc.passed = false;
          rc.error = cat("step counts differ (BASE ", steps_b, ", NEW ", steps_c, ")");
        }
      } else {
        rc = compare_request(b, c, report.vocab_base, options);
        if (steps_b != steps_c) {
          rc.passed = false;
          rc.error = cat("step counts differ (BASE ", steps_b, ", NEW ", steps_c, ")");
        }
      }
    }
    if (!rc.error.empty()) rc.passed = false;
    if (rc.passed) {
      ++report.passed;
    } else if (!(rc.error.rfind("not compared", 0) == 0)) {  // the vocab error already said it once
      report.errors.push_back(rc.failure_message(options));
    }
    report.requests.push_back(std::move(rc));
  }
  return report;
}

ComparisonReport compare_logits_files(const std::string& base_path, const std::string& new_path,
                                      const AllcloseOptions& options) {
  LogitsReader base(base_path);
  LogitsReader candidate(new_path);
  return compare_logits(base, candidate, options);
}

namespace {

nlohmann::json number(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  return x;
}

}  // namespace

std::string to_json(const ComparisonReport& report) {
  nlohmann::json j;
  j["base"] = report.base_path;
  j["new"] = report.new_path;
  j["rtol"] = report.options.rtol;
  j["atol"] = report.options.atol;
  j["max_steps"] = report.options.max_steps;
  if (report.top_k > 0) {
    j["mode"] = "top_k";
    j["top_k"] = report.top_k;
    j["logprob_atol"] = report.options.logprob_atol;
    j["min_top1_agreement"] = report.options.min_top1_agreement;
    j["max_kl"] = report.options.max_kl;
    j["kl_note"] = "KL over the union of the two top-K sets, renormalized: an approximation";
  } else {
    j["mode"] = "dense";
  }
  j["vocab_size"] = {{"base", report.vocab_base}, {"new", report.vocab_new}};
  j["passed"] = report.passed;
  j["total"] = report.total();
  j["all_passed"] = report.all_passed();
  j["summary"] = report.summary_line();
  j["errors"] = report.errors;
  j["requests"] = nlohmann::json::array();
  for (const auto& r : report.requests) {
    nlohmann::json o = {{"id", r.id},
                        {"passed", r.passed},
                        {"steps", r.steps},
                        {"max_abs", number(r.max_abs)},
                        {"max_rel", number(r.max_rel)},
                        {"max_tol_ratio", number(r.max_tol_ratio)},
                        {"top1_agreement", number(r.top1_agreement)},
                        {"max_kl", number(r.max_kl)},
                        {"first_token_mismatch", r.first_token_mismatch}};
    if (!r.error.empty()) o["error"] = r.error;
    if (report.top_k > 0) {
      o["max_logprob_diff"] = number(r.max_logprob_diff);
      o["min_overlap"] = number(r.min_overlap);
      o["first_top1_mismatch"] = r.first_top1_mismatch;
      o["first_fail"] = nullptr;
      if (r.topk_fail.step >= 0)
        o["first_fail"] = {{"step", r.topk_fail.step}, {"token", r.topk_fail.token},
                           {"base_logprob", number(r.topk_fail.base_logprob)},
                           {"new_logprob", number(r.topk_fail.new_logprob)}, {"kl", number(r.topk_fail.kl)},
                           {"why", r.topk_fail.why}};
    } else if (r.first_fail.step >= 0)
      o["first_fail"] = {{"step", r.first_fail.step},
                         {"index", r.first_fail.index},
                         {"base", number(r.first_fail.base)},
                         {"new", number(r.first_fail.candidate)}};
    else
      o["first_fail"] = nullptr;
    j["requests"].push_back(std::move(o));
  }
  return j.dump(2);
}

namespace {

std::string topk_table(const ComparisonReport& report, const std::vector<const RequestComparison*>& rows) {
  const AllcloseOptions& o = report.options;
  std::string out = cat("worst ", rows.size(), " of ", report.total(), " requests (top-", report.top_k,
                        " logprobs; --logprob-atol ", num(o.logprob_atol), ", --min-top1-agreement ",
                        num(o.min_top1_agreement), ", --max-kl ", num(o.max_kl), "; KL over the union of the top-K sets, approximate)\n");
  char line[256];
  std::snprintf(line, sizeof line, "%-10s %5s %12s %6s %8s %10s %16s  %s\n", "id", "steps", "max|dlogp|", "top1",
                "overlap", "max_kl", "first_fail", "result");
  out += line;
  for (const auto* r : rows) {
    const std::string ff = r->topk_fail.step >= 0 ? cat("step ", r->topk_fail.step, " tok ", r->topk_fail.token) : "-";
    std::string result = r->passed ? "ok" : r->error.empty() ? "FAIL" : "ERROR: " + r->error;
    if (r->first_token_mismatch >= 0) result += cat(" (diverged at step ", r->first_token_mismatch, ")");
    auto show = [&](double x, const char* spec) { return r->steps > 0 ? num(x, spec) : std::string("-"); };
    std::snprintf(line, sizeof line, "%-10s %5d %12s %6s %8s %10s %16s  ", r->id.c_str(), r->steps,
                  show(r->max_logprob_diff, "%.3g").c_str(), show(r->top1_agreement, "%.3f").c_str(),
                  show(r->min_overlap, "%.2f").c_str(), show(r->max_kl, "%.3g").c_str(), ff.c_str());
    out += line + result + "\n";
  }
  return out;
}

}  // namespace

std::string worst_table(const ComparisonReport& report, int worst) {
  std::vector<const RequestComparison*> rows;
  for (const auto& r : report.requests) rows.push_back(&r);
  // Failed first (structural errors before numeric ones), then closest to (or furthest past) the tolerance.
  std::stable_sort(rows.begin(), rows.end(), [](const RequestComparison* a, const RequestComparison* b) {
    if (a->passed != b->passed) return !a->passed;
    if (a->error.empty() != b->error.empty()) return !a->error.empty();
    return a->max_tol_ratio > b->max_tol_ratio;
  });
  if (worst >= 0 && rows.size() > static_cast<size_t>(worst)) rows.resize(worst);
  if (report.top_k > 0) return topk_table(report, rows);

  std::string out = cat("worst ", rows.size(), " of ", report.total(), " requests (rtol ", num(report.options.rtol),
                        ", atol ", num(report.options.atol), ")\n");
  char line[256];
  std::snprintf(line, sizeof line, "%-10s %5s %10s %10s %8s %16s %6s %10s  %s\n", "id", "steps", "max_abs",
                "max_rel", "x_tol", "first_fail", "top1", "max_kl", "result");
  out += line;
  for (const auto* r : rows) {
    std::string ff = r->first_fail.step >= 0 ? cat(r->first_fail.step, "/", r->first_fail.index) : "-";
    std::string result = r->passed ? "ok" : r->error.empty() ? "FAIL" : "ERROR: " + r->error;
    if (r->first_token_mismatch >= 0) result += cat(" (chosen tokens differ from step ", r->first_token_mismatch, ")");
    // A request that was not compared (missing, other prompt) has no numbers to show.
    auto show = [&](double x, const char* spec) { return r->steps > 0 ? num(x, spec) : std::string("-"); };
    std::snprintf(line, sizeof line, "%-10s %5d %10s %10s %8s %16s %6s %10s  ", r->id.c_str(), r->steps,
                  show(r->max_abs, "%.3g").c_str(), show(r->max_rel, "%.3g").c_str(),
                  show(r->max_tol_ratio, "%.3g").c_str(), ff.c_str(), show(r->top1_agreement, "%.3f").c_str(),
                  show(r->max_kl, "%.3g").c_str());
    out += line + result + "\n";
  }
  return out;
}

}  // namespace accuracy
