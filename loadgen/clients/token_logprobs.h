// One generated (or scored) token's log-probabilities as a server returned them (--dump-logprobs): the token
// and its K most likely alternatives, each by id when the server gives ids (TGI, llama.cpp, vLLM's
// "token_id:<id>" names) and by text otherwise (mapped to ids later, through --tokenizer).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace loadgen {

struct TokenLogprob {
  int32_t id = -1;     ///< -1: the server named it by text only
  std::string text;
  double logprob = 0;  ///< NaN when the server sent none (null)
};

struct StepLogprobs {
  TokenLogprob token;              ///< the chosen (or scored) token
  std::vector<TokenLogprob> top;   ///< most likely first, as sent
};

/// Which reading an OpenAI choices[0].logprobs value takes: completions (legacy arrays, or llama.cpp's
/// content) or chat (content).
enum class LogprobsLayout : uint8_t { kCompletion, kChat };

}  // namespace loadgen
