// The log-probability fields of each API, built from the engine's per-step TokenLogprobs (engine/logprobs.h):
//   OpenAI completions  choices[0].logprobs {tokens, token_logprobs, top_logprobs [{text: lp}], text_offset}
//   vLLM                choices[0].prompt_logprobs [null, {"<id>": {logprob, rank, decoded_token}}, ...]
//   OpenAI chat         choices[0].logprobs {content: [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}
//   TGI                 token {id, text, logprob, special}, top_tokens [...], details.tokens / top_tokens / prefill
// A token's text is its bytes when they are valid UTF-8, else "bytes:\xNN..." (vLLM's spelling); with vLLM's
// return_tokens_as_token_ids it is "token_id:<id>", which a client maps back without a tokenizer.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/logprobs.h"
#include "engine/tokenizer.h"

namespace server {

/// Each id's text as the logprob fields show it (computed once from the tokenizer).
class TokenTexts {
 public:
  explicit TokenTexts(const engine::Tokenizer& tokenizer);
  const std::string& text(int32_t id) const;          ///< UTF-8 text, or "bytes:\xNN..." when it is not
  const std::string& raw_bytes(int32_t id) const;     ///< the token's raw bytes
  std::string name(int32_t id, bool as_token_id) const;  ///< "token_id:<id>" when as_token_id, else text(id)

 private:
  std::vector<std::string> text_, bytes_;
  std::string unknown_ = "";
};

/// One step's log-probabilities (nullopt: the first prompt token, which has none).
using StepLogprobs = std::optional<engine::TokenLogprobs>;

/// OpenAI completions' choices[0].logprobs over `steps` (its `k` best per step), text_offset from `offset0`.
nlohmann::json openai_completion_logprobs(const std::vector<StepLogprobs>& steps, const TokenTexts& texts, int k,
                                          bool token_ids, size_t offset0);
/// vLLM's prompt_logprobs: one entry per prompt token, null for the first; each holds the prompt token and the k best.
nlohmann::json vllm_prompt_logprobs(const std::vector<StepLogprobs>& steps, const TokenTexts& texts, int k,
                                    bool token_ids);
/// OpenAI chat's choices[0].logprobs ({"content": [...]}) over `steps`, with `k` top_logprobs each.
nlohmann::json chat_logprobs(const std::vector<StepLogprobs>& steps, const TokenTexts& texts, int k, bool token_ids);
/// TGI's token object {id, text, logprob, special} (logprob null when `lp` is empty).
nlohmann::json tgi_token(int32_t id, const std::string& text, const StepLogprobs& lp, bool special);
/// TGI's top_tokens of one step: the k best as token objects.
nlohmann::json tgi_top_tokens(const engine::TokenLogprobs& lp, const TokenTexts& texts, int k, int eos_id);

}  // namespace server
