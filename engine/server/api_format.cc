#include "api_format.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace server {

using nlohmann::json;

namespace {

// Engine text deltas are whole UTF-8 characters, but a prompt echoed back may not be: never throw on it.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
std::string sse(const json& j) { return "data: " + dump(j) + "\n\n"; }

json usage(const engine::FinishEvent& fin) {
  return {{"prompt_tokens", fin.prompt_tokens},
          {"completion_tokens", fin.output_tokens},
          {"total_tokens", fin.prompt_tokens + fin.output_tokens}};
}

json openai_chunk(const OpenAIMeta& m, std::string_view text, const char* finish, const json& logprobs = nullptr,
                  const json& prompt_logprobs = nullptr) {
  json choice = {{"index", 0}, {"text", text}, {"logprobs", logprobs},
                 {"finish_reason", finish ? json(finish) : json(nullptr)}};
  if (!prompt_logprobs.is_null()) choice["prompt_logprobs"] = prompt_logprobs;
  return {{"id", m.id}, {"object", "text_completion"}, {"created", m.created}, {"model", m.model},
          {"choices", json::array({choice})}};
}

json chat_chunk(const OpenAIMeta& m, json delta, const char* finish, json logprobs = nullptr) {
  json choice = {{"index", 0}, {"delta", std::move(delta)}, {"logprobs", std::move(logprobs)},
                 {"finish_reason", finish ? json(finish) : json(nullptr)}};
  return {{"id", m.id}, {"object", "chat.completion.chunk"}, {"created", m.created}, {"model", m.model},
          {"choices", json::array({choice})}};
}

json tgi_details(const engine::FinishEvent& fin, const TgiFinal& final) {
  json d = {{"finish_reason", tgi_finish_reason(fin.reason)},
            {"generated_tokens", fin.output_tokens},
            {"seed", final.seed},
            {"prompt_tokens", fin.prompt_tokens}};  // not in TGI; lets a client count without re-tokenizing
  if (final.extra_details.is_object()) d.update(final.extra_details);
  return d;
}

}  // namespace

const char* openai_finish_reason(engine::FinishReason r) {
  switch (r) {
    case engine::FinishReason::kLength: return "length";
    case engine::FinishReason::kEos:
    case engine::FinishReason::kStop: return "stop";
    case engine::FinishReason::kAborted: return "abort";
    case engine::FinishReason::kError: return "error";
  }
  return "error";
}

const char* tgi_finish_reason(engine::FinishReason r) {
  switch (r) {
    case engine::FinishReason::kLength: return "length";
    case engine::FinishReason::kEos: return "eos_token";
    case engine::FinishReason::kStop: return "stop_sequence";
    case engine::FinishReason::kAborted: return "aborted";
    case engine::FinishReason::kError: return "error";
  }
  return "error";
}

std::string openai_token_chunk(const OpenAIMeta& m, std::string_view text, const json& logprobs,
                               const json& prompt_logprobs) {
  return sse(openai_chunk(m, text, nullptr, logprobs, prompt_logprobs));
}

std::string openai_final_chunk(const OpenAIMeta& m, const engine::FinishEvent& fin) {
  json j = openai_chunk(m, "", openai_finish_reason(fin.reason));
  j["usage"] = usage(fin);
  return sse(j);
}

std::string openai_response(const OpenAIMeta& m, std::string_view text, const engine::FinishEvent& fin,
                            const json& logprobs, const json& prompt_logprobs) {
  json j = openai_chunk(m, text, openai_finish_reason(fin.reason), logprobs, prompt_logprobs);
  j["usage"] = usage(fin);
  return dump(j);
}

std::string openai_chat_role_chunk(const OpenAIMeta& m) {
  return sse(chat_chunk(m, {{"role", "assistant"}, {"content", ""}}, nullptr));
}

std::string openai_chat_token_chunk(const OpenAIMeta& m, std::string_view text, const json& logprobs) {
  return sse(chat_chunk(m, {{"content", text}}, nullptr, logprobs));
}

std::string openai_chat_final_chunk(const OpenAIMeta& m, const engine::FinishEvent& fin, const json& logprobs) {
  return sse(chat_chunk(m, json::object(), openai_finish_reason(fin.reason), logprobs));
}

std::string openai_usage_chunk(const OpenAIMeta& m, const engine::FinishEvent& fin) {
  return sse({{"id", m.id}, {"object", "chat.completion.chunk"}, {"created", m.created}, {"model", m.model},
              {"choices", json::array()}, {"usage", usage(fin)}});
}

std::string openai_chat_response(const OpenAIMeta& m, std::string_view text, const engine::FinishEvent& fin,
                                 const json& logprobs) {
  json choice = {{"index", 0}, {"message", {{"role", "assistant"}, {"content", text}}}, {"logprobs", logprobs},
                 {"finish_reason", openai_finish_reason(fin.reason)}};
  return dump({{"id", m.id}, {"object", "chat.completion"}, {"created", m.created}, {"model", m.model},
               {"choices", json::array({choice})}, {"usage", usage(fin)}});
}

std::string tgi_stream_event(const engine::TokenEvent* token, bool special, const TgiFinal* final,
                             const engine::FinishEvent* fin, std::optional<double> logprob, const json& top_tokens) {
  json j;
  if (token) {
    j["token"] = {{"id", token->token}, {"text", token->text},
                  {"logprob", logprob && std::isfinite(*logprob) ? json(*logprob) : json(nullptr)}, {"special", special}};
    if (!top_tokens.is_null()) j["top_tokens"] = top_tokens;
  } else {
    j["token"] = nullptr;
  }
  j["generated_text"] = final ? json(final->generated_text) : json(nullptr);
  j["details"] = (final && final->details && fin) ? tgi_details(*fin, *final) : json(nullptr);
  // TGI writes "data:" with no space; SSE parsers accept both.
  return "data:" + dump(j) + "\n\n";
}

std::string tgi_response(const TgiFinal& final, const engine::FinishEvent& fin) {
  json j = {{"generated_text", final.generated_text}};
  if (final.details) j["details"] = tgi_details(fin, final);
  return dump(j);
}

std::string openai_error_event(std::string_view message) {
  return sse({{"error", {{"message", message}, {"type", "server_error"}, {"param", nullptr}, {"code", nullptr}}}});
}

std::string tgi_error_event(std::string_view message, std::string_view error_type) {
  return "data:" + dump({{"error", message}, {"error_type", error_type}}) + "\n\n";
}

std::string openai_error_body(std::string_view message, std::string_view type, std::string_view param) {
  return dump({{"error", {{"message", message}, {"type", type},
                          {"param", param.empty() ? json(nullptr) : json(param)}, {"code", nullptr}}}});
}

std::string tgi_error_body(std::string_view message, std::string_view type, std::string_view param) {
  json j = {{"error", message}, {"error_type", type}};
  if (!param.empty()) j["field"] = param;
  return dump(j);
}

}  // namespace server
