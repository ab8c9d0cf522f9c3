// Response bodies and stream events in each API's dialect: OpenAI completions (SSE "data: {json}\n\n"
// chunks, a closing chunk with usage, "data: [DONE]") and TGI (SSE "data:{token, generated_text, details}").
// Pure string building: the HTTP layer decides when to send what.
#pragma once

#include <cstdint>
#include <string>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "engine/engine.h"

namespace server {

const char* openai_finish_reason(engine::FinishReason r);  ///< length | stop | abort | error
const char* tgi_finish_reason(engine::FinishReason r);     ///< length | eos_token | stop_sequence | ...

struct OpenAIMeta {
  std::string id;       ///< "cmpl-<engine id>"
  int64_t created = 0;  ///< unix seconds
  std::string model;
};

/// One token's chunk: choices[0].text = `text`, finish_reason null; choices[0].logprobs = `logprobs` (null when
/// not asked), and choices[0].prompt_logprobs = `prompt_logprobs` when it is not null (vLLM, first chunk).
std::string openai_token_chunk(const OpenAIMeta& m, std::string_view text, const nlohmann::json& logprobs = nullptr,
                               const nlohmann::json& prompt_logprobs = nullptr);
/// The closing chunk: empty text, finish_reason, and usage {prompt_tokens, completion_tokens, total_tokens}.
std::string openai_final_chunk(const OpenAIMeta& m, const engine::FinishEvent& fin);
inline constexpr std::string_view kOpenAIDone = "data: [DONE]\n\n";
/// Non-streamed answer: the whole text, finish_reason and usage (logprobs / prompt_logprobs as in a chunk).
std::string openai_response(const OpenAIMeta& m, std::string_view text, const engine::FinishEvent& fin,
                            const nlohmann::json& logprobs = nullptr, const nlohmann::json& prompt_logprobs = nullptr);

// Chat completions (object "chat.completion.chunk"), as vLLM streams them: a first frame with only the role,
// one frame per token with text (delta.content), a closing frame with an empty delta and finish_reason, and
// with stream_options.include_usage a usage-only chunk (no choices) before [DONE].
std::string openai_chat_role_chunk(const OpenAIMeta& m);
/// `logprobs`: choices[0].logprobs ({"content": [...]}, chat_logprobs) or null.
std::string openai_chat_token_chunk(const OpenAIMeta& m, std::string_view text,
                                    const nlohmann::json& logprobs = nullptr);
std::string openai_chat_final_chunk(const OpenAIMeta& m, const engine::FinishEvent& fin,
                                    const nlohmann::json& logprobs = nullptr);
std::string openai_usage_chunk(const OpenAIMeta& m, const engine::FinishEvent& fin);
/// Non-streamed chat answer: choices[0].message {role: assistant, content}, finish_reason and usage.
std::string openai_chat_response(const OpenAIMeta& m, std::string_view text, const engine::FinishEvent& fin,
                                 const nlohmann::json& logprobs = nullptr);

struct TgiFinal {
  std::string generated_text;   ///< (prompt +) all generated text
  bool details = false;
  uint64_t seed = 0;
  nlohmann::json extra_details = nullptr;  ///< merged into details: tokens, top_tokens, prefill (when asked)
};

/// A token event; when `final` is given it is the last event and carries generated_text (+ details).
/// `token` may be null for a final event with no token of its own (the stream ended by stop/abort).
/// `logprob` fills token.logprob, and a non-null `top_tokens` is the event's top_tokens (top_n_tokens asked).
std::string tgi_stream_event(const engine::TokenEvent* token, bool special, const TgiFinal* final,
                             const engine::FinishEvent* fin, std::optional<double> logprob = std::nullopt,
                             const nlohmann::json& top_tokens = nullptr);
/// Non-streamed answer: {"generated_text": ..., "details": {...}}.
std::string tgi_response(const TgiFinal& final, const engine::FinishEvent& fin);

/// Mid-stream error event (the headers already said 200): OpenAI {"error": {...}} / TGI {"error", "error_type"}.
std::string openai_error_event(std::string_view message);
std::string tgi_error_event(std::string_view message, std::string_view error_type);

/// Error bodies for a 4xx/5xx answer. OpenAI: {"error": {"message", "type", "param", "code"}};
/// TGI: {"error": message, "error_type": type, "field": param}.
std::string openai_error_body(std::string_view message, std::string_view type, std::string_view param);
std::string tgi_error_body(std::string_view message, std::string_view type, std::string_view param);

}  // namespace server
