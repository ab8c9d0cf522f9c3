// The log-probability fields of each server dialect, both ways: what a request body adds to ask for them
// (--top-logprobs K, and prompt scoring for --reference over HTTP) and how a response's fields become
// StepLogprobs. Pure JSON, unit-tested on strings.
//   OpenAI completions  ask logprobs: K (+ vLLM's return_tokens_as_token_ids); read choices[0].logprobs, either
//                       the legacy {tokens, token_logprobs, top_logprobs: [{text: lp}]} or llama.cpp's {content: [...]}
//   OpenAI chat         ask logprobs: true, top_logprobs: K; read choices[0].logprobs.content [{token, logprob, top_logprobs}]
//   TGI                 ask details: true, top_n_tokens: K; read token {id, text, logprob} and top_tokens, or
//                       details.tokens / details.top_tokens (non-streamed)
//   llama.cpp           ask n_probs: K as well; its entries carry "id"
//   prompt scoring      vLLM prompt_logprobs: K, and OpenAI echo: true with logprobs (max_tokens 1);
//                       TGI decoder_input_details: true (details.prefill)
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <vector>

#include "loadgen/clients/token_logprobs.h"

namespace loadgen {

enum class HttpApi;

/// Adds the fields asking for `k` top logprobs per generated token to a completions / TGI body.
void add_logprobs_request(HttpApi api, int k, nlohmann::json& body);
/// Adds OpenAI chat's logprobs: true, top_logprobs: k.
void add_chat_logprobs_request(int k, nlohmann::json& body);
/// Adds prompt scoring (every prompt position's logprob and its k best) to a completions / TGI body.
void add_prompt_scoring_request(HttpApi api, int k, nlohmann::json& body);

/// A token named by a string: "token_id:123" (vLLM's return_tokens_as_token_ids) is id 123 with no text,
/// anything else is text (id -1).
TokenLogprob named_token(std::string_view text, double logprob);

/// choices[0].logprobs of a completion (either layout); empty when absent or null.
std::vector<StepLogprobs> parse_completion_logprobs(const nlohmann::json& logprobs);
/// choices[0].logprobs of a chat completion ({content: [...]}); empty when absent or null.
std::vector<StepLogprobs> parse_chat_logprobs(const nlohmann::json& logprobs);
/// A TGI stream event's token (+ top_tokens); nullopt when its token has no logprob.
std::optional<StepLogprobs> parse_tgi_token_logprobs(const nlohmann::json& event);
/// A TGI details object's tokens / top_tokens (non-streamed answers).
std::vector<StepLogprobs> parse_tgi_details_logprobs(const nlohmann::json& details);
/// vLLM's choices[0].prompt_logprobs: one entry per prompt position (nullopt for the first, and for nulls).
/// `prompt_ids[i]` names the scored token of position i (the entries are keyed by id, the token among them).
std::vector<std::optional<StepLogprobs>> parse_vllm_prompt_logprobs(const nlohmann::json& prompt_logprobs,
                                                                    const std::vector<int32_t>& prompt_ids);
/// TGI's details.prefill: {id, text, logprob, top_tokens (ours)} per prompt position.
std::vector<std::optional<StepLogprobs>> parse_tgi_prefill(const nlohmann::json& prefill);

}  // namespace loadgen
