// JSON request bodies → engine::Request, one function per API dialect. Pure (no sockets, no engine), so
// every validation rule is unit-tested on strings. Anything wrong throws BadRequest naming the field; the
// HTTP layer turns that into a 400 with a JSON error.
#pragma once

#include <algorithm>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "engine/engine.h"

namespace server {

enum class Api { kOpenAI, kTgi };

/// A client error: `field` is the JSON path at fault ("max_tokens", "parameters.top_p", "body").
struct BadRequest : std::invalid_argument {
  BadRequest(std::string field, const std::string& message)
      : std::invalid_argument(field + ": " + message), field(std::move(field)) {}
  std::string field;
};

/// Bounds the parser checks against (from the loaded engine).
struct ParseLimits {
  int max_new_tokens = 4096;   ///< largest max_tokens / max_new_tokens accepted (the model's max_model_len)
  int vocab_size = 0;          ///< token-id prompts must be < this (0: not checked)
  size_t max_stop_strings = 16;
  int max_json_depth = 32;     ///< deeper nesting is refused before the JSON parser sees it
  int max_logprobs = 20;       ///< largest logprobs / top_logprobs / prompt_logprobs / top_n_tokens (vLLM's default)
};

/// What a request asks about log-probabilities (all off by default; docs/formats.md, "Log-probabilities").
struct LogprobsRequest {
  int top_k = -1;          ///< generated tokens: -1 none; 0 the chosen token's logprob; K: and the K best
  int prompt_top_k = -1;   ///< prompt tokens scored (prompt_logprobs, echo + logprobs, decoder_input_details): -1 none
  bool echo = false;       ///< OpenAI: the prompt is returned before the completion (text and logprobs)
  bool vllm_prompt = false;///< vLLM prompt_logprobs: the choice carries "prompt_logprobs"
  bool token_ids = false;  ///< vLLM return_tokens_as_token_ids: tokens named "token_id:<id>"
  bool any() const { return top_k >= 0 || prompt_top_k >= 0; }
  int max_k() const { return std::max(top_k, prompt_top_k); }
};

struct ParsedRequest {
  Api api = Api::kOpenAI;
  engine::Request request;
  bool stream = false;
  std::string model;             ///< OpenAI "model" as sent (echoed back)
  bool return_full_text = false; ///< TGI: prepend the prompt to generated_text
  bool details = false;          ///< TGI: include details (finish_reason, generated_tokens, seed)
  std::string prompt_field;      ///< "prompt" or "inputs": the field named when the prompt is too long
  LogprobsRequest logprobs;
};

/// POST /v1/completions: model, prompt (string or token ids), max_tokens, temperature, top_p, top_k,
/// seed, stop (string or list), ignore_eos, stream, stream_options, n (must be 1), logprobs (0..max_logprobs),
/// echo, prompt_logprobs and return_tokens_as_token_ids (vLLM); max_tokens may be 0 when the prompt is scored.
ParsedRequest parse_openai_completion(std::string_view body, const ParseLimits& limits);

/// TGI bodies: inputs, parameters{max_new_tokens, temperature, top_k, top_p, do_sample, seed, stop,
/// return_full_text, details, ignore_eos, top_n_tokens, decoder_input_details (not with a stream, as TGI)}, stream. `stream_default` is the route's choice (/generate false,
/// /generate_stream true, /models/<name>/generate false unless the body says "stream": true).
ParsedRequest parse_tgi_generate(std::string_view body, bool stream_default, bool stream_from_body,
                                 const ParseLimits& limits);

/// OpenAI chat's logprobs (bool) and top_logprobs (0..max_logprobs, needs logprobs) from a chat body, into `out`
/// (for the chat parser: `j` is the parsed body object).
void parse_chat_logprobs(const nlohmann::json& j, const ParseLimits& limits, LogprobsRequest& out);

/// Nesting depth of a JSON text ([ and { outside strings), computed without building it; bails out at
/// `limit + 1`.
int json_depth(std::string_view text, int limit);

}  // namespace server
