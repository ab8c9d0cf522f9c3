// What the HTTP client says to, and hears from, each kind of server: the request (path + JSON body) built
// from a WorkItem, and the meaning of one streamed event (or a whole non-streamed JSON body). No sockets
// here, so every server dialect is unit-tested on strings.
#pragma once

#include <string>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <vector>

#include "common/enum_names.h"
#include "loadgen/clients/client.h"
#include "loadgen/clients/http_logprobs.h"

namespace loadgen {

enum class HttpApi { kOpenAI, kOpenAIChat, kTgi, kLlmServing };

inline constexpr auto kHttpApiNames = common::enum_names<HttpApi>({{HttpApi::kOpenAI, "openai"},
                                                                   {HttpApi::kOpenAIChat, "openai-chat"},
                                                                   {HttpApi::kTgi, "tgi"},
                                                                   {HttpApi::kLlmServing, "llm-serving"}});
inline const char* to_string(HttpApi api) { return kHttpApiNames.name(api); }

/// Path of the streaming generate route: /v1/completions, /v1/chat/completions, /generate_stream,
/// /models/<model>/generate.
std::string request_path(HttpApi api, const std::string& model_name);
/// The route for `item`: request_path's, except TGI prompt scoring (score_steps > 0), which TGI answers only
/// without streaming: /generate.
std::string request_path(HttpApi api, const std::string& model_name, const WorkItem& item);

/// JSON body asking for a streamed completion of `item`. Greedy (temperature 0) is sent as TGI expects it
/// (do_sample false, no temperature), and ignore_eos as the vLLM/our-server extension field. Chat: the
/// messages of chat_messages(item).
std::string request_body(HttpApi api, const std::string& model_name, const WorkItem& item);

/// The conversation a chat request sends: item.messages, or one user message holding item.prompt.
std::vector<ChatMessage> chat_messages(const WorkItem& item);

/// The meaning of one event, whatever dialect it is in (OpenAI completion chunks, TGI stream events, TGI
/// or OpenAI non-streamed bodies): the dialect is recognised from the JSON itself, so a server that
/// answers the "wrong" way is still understood.
///
/// What is a token: a completion chunk with text (also an empty text mid-stream: bytes of a character that
/// ends later), a TGI token event, a chat delta with non-empty content or reasoning_content (vLLM also
/// spells it "reasoning"). Not a token: a chat frame carrying only the role, an empty delta, a chunk with
/// no choices (the usage-only last chunk of stream_options.include_usage), a closing chunk that only gives
/// finish_reason. So a final usage chunk never moves the first-token time.
struct ApiEvent {
  bool is_token = false;        ///< carries one generated token (its text may be empty)
  bool reasoning = false;       ///< chat: the token is a reasoning_content delta (no content in it)
  std::string text;             ///< text delta of this event (chat: reasoning, then content)
  bool has_full_text = false;   ///< TGI generated_text / a non-streamed body: the whole output is here
  std::string full_text;
  bool done = false;            ///< OpenAI's [DONE], or TGI's final event (generated_text set)
  std::string finish_reason;    ///< normalised: length | eos | stop | aborted | <as sent>
  int prompt_tokens = -1;       ///< from usage / details, when present
  int completion_tokens = -1;   ///< from usage / details.generated_tokens, when present
  std::string error;            ///< the server reported an error in the stream; the request failed
  std::vector<StepLogprobs> logprobs;  ///< generated tokens' logprobs in this event (echo: the prompt's first)
  std::vector<std::optional<StepLogprobs>> prompt_logprobs;  ///< vLLM prompt_logprobs / TGI prefill, by position
  bool prompt_logprobs_by_id = false;  ///< vLLM's layout: entries keyed by id (resolved by the caller, see below)
  nlohmann::json raw_prompt_logprobs;  ///< vLLM's prompt_logprobs as sent (needs the prompt's ids to name the token)
};

/// Decodes one SSE data payload or one response body. Malformed JSON becomes `error`.
ApiEvent decode_api_event(std::string_view data);

/// The text rules of ApiEvent (above), shared by decode_api_event and the one-pass chunk decoder
/// (openai_event.h): a completion choice's `text` (with whether the choice gave a finish_reason), a chat
/// delta's or message's reasoning_content / reasoning / content ("" where absent or not a string).
void set_completion_text(ApiEvent& ev, std::string text, bool finished);
void set_chat_text(ApiEvent& ev, const std::string& reasoning_content, const std::string& reasoning,
                   const std::string& content);

/// A finish reason as ApiEvent keeps it: TGI's eos_token / stop_sequence as eos / stop, any other as sent.
std::string normalise_finish_reason(const std::string& r);

}  // namespace loadgen
