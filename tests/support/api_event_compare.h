// ApiEvent and StepLogprobs compared field by field, logprobs bit for bit: for the tests that hold a fast
// decoder to the DOM's (logprobs_scan_test, openai_event_test).
#pragma once

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "loadgen/clients/http_api.h"

namespace api_event_compare {

using loadgen::ApiEvent;
using loadgen::StepLogprobs;
using loadgen::TokenLogprob;

inline std::string describe(const TokenLogprob& t) {
  char lp[64];
  std::snprintf(lp, sizeof lp, "%a", t.logprob);
  return "{id " + std::to_string(t.id) + ", text '" + t.text + "', lp " + lp + "}";
}

// Equal as the dump would store them: ids, texts, and logprobs bit for bit (NaN is NaN, -0 is not 0).
inline ::testing::AssertionResult same_token(const TokenLogprob& a, const TokenLogprob& b) {
  if (a.id == b.id && a.text == b.text && std::bit_cast<uint64_t>(a.logprob) == std::bit_cast<uint64_t>(b.logprob))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << describe(a) << " vs " << describe(b);
}

inline ::testing::AssertionResult same_steps(const std::vector<StepLogprobs>& a, const std::vector<StepLogprobs>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << a.size() << " steps vs " << b.size();
  for (size_t s = 0; s < a.size(); ++s) {
    if (auto r = same_token(a[s].token, b[s].token); !r) return r << " (step " << s << " token)";
    if (a[s].top.size() != b[s].top.size())
      return ::testing::AssertionFailure() << "step " << s << ": " << a[s].top.size() << " alternatives vs " << b[s].top.size();
    for (size_t i = 0; i < a[s].top.size(); ++i)
      if (auto r = same_token(a[s].top[i], b[s].top[i]); !r) return r << " (step " << s << " alternative " << i << ")";
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult same_event(const ApiEvent& a, const ApiEvent& b) {
  auto fail = [](const char* what) { return ::testing::AssertionFailure() << what << " differs"; };
  if (a.is_token != b.is_token) return fail("is_token");
  if (a.reasoning != b.reasoning) return fail("reasoning");
  if (a.text != b.text) return fail("text");
  if (a.has_full_text != b.has_full_text || a.full_text != b.full_text) return fail("full_text");
  if (a.done != b.done) return fail("done");
  if (a.finish_reason != b.finish_reason) return fail("finish_reason");
  if (a.prompt_tokens != b.prompt_tokens || a.completion_tokens != b.completion_tokens) return fail("usage");
  if (a.error != b.error) return ::testing::AssertionFailure() << "error '" << a.error << "' vs '" << b.error << "'";
  if (auto r = same_steps(a.logprobs, b.logprobs); !r) return r << " (logprobs)";
  if (a.prompt_logprobs.size() != b.prompt_logprobs.size()) return fail("prompt_logprobs");
  for (size_t i = 0; i < a.prompt_logprobs.size(); ++i) {
    if (a.prompt_logprobs[i].has_value() != b.prompt_logprobs[i].has_value()) return fail("prompt_logprobs");
    if (a.prompt_logprobs[i])
      if (auto r = same_steps({*a.prompt_logprobs[i]}, {*b.prompt_logprobs[i]}); !r) return r << " (prompt_logprobs)";
  }
  if (a.prompt_logprobs_by_id != b.prompt_logprobs_by_id || a.raw_prompt_logprobs != b.raw_prompt_logprobs)
    return fail("raw_prompt_logprobs");
  return ::testing::AssertionSuccess();
}

}  // namespace api_event_compare
