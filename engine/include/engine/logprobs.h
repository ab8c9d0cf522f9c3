// Log-probabilities of one step from its raw logits: what llm-serve returns for OpenAI `logprobs`/`top_logprobs`,
// TGI `top_n_tokens`/`decoder_input_details` and vLLM `prompt_logprobs`. log_softmax(x)_i = x_i − (m + log Σ exp(x_j − m)),
// m = max x, summed in float64: stable for any logit scale.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace engine {

struct TopLogprob {
  int32_t id = 0;
  double logprob = 0;
};

struct TokenLogprobs {
  int32_t token = 0;             ///< the chosen (or scored) token
  double logprob = 0;            ///< its log-probability
  int rank = 0;                  ///< 1 + how many tokens are strictly more likely (vLLM's "rank")
  std::vector<TopLogprob> top;   ///< the k most likely, most likely first (ties: lower id first)
};

/// The log-softmax of `logits` at `token`, its rank and the top `k` (k <= 0: none; k > vocab: all).
/// A NaN logit makes every logprob NaN (it is not hidden).
TokenLogprobs token_logprobs(std::span<const float> logits, int32_t token, int k);

}  // namespace engine
