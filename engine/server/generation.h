// One generation request as the server sees it: the engine's events (from its StreamSink) turned into the
// bytes of the chosen API — SSE events for a stream, one JSON body otherwise — plus its metrics. Owned by
// a shared_ptr that the connection's content provider and the engine's sink reference outlive together.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api_format.h"
#include "logprobs_format.h"
#include "request_parser.h"
#include "stream_sink.h"

namespace server {

class ServerMetrics;

class Generation {
 public:
  /// `prompt_steps`: forced steps that score the prompt (prepare_logprobs); `texts` names tokens in the
  /// logprob fields (needed when parsed.logprobs.any(); must outlive the generation).
  Generation(ParsedRequest parsed, std::string route, engine::Clock::time_point received, int eos_id,
             int64_t created_unix, int prompt_steps = 0, const TokenTexts* texts = nullptr);
  /// The engine's id, known once submitted.
  void set_id(uint64_t id);

  /// Turns `items` into stream bytes appended to `out` (stream) or into the accumulated answer.
  /// Returns true once the finish event was consumed.
  bool consume(std::vector<StreamSink::Item>& items, std::string& out);
  /// Bytes a stream opens with before any engine event (chat: the role-only frame); "" for none and after
  /// the first call.
  std::string stream_start();

  bool finished() const { return finish_.has_value(); }
  /// After finished(): the non-streamed answer's HTTP status and body (in the request's API dialect).
  int response_status() const;
  std::string response_body() const;
  /// The logical status of a finished request: 200, or 500 (engine error) / 503 (aborted by shutdown).
  int final_status() const { return response_status(); }
  void record_metrics(ServerMetrics& m) const;

  const ParsedRequest& parsed() const { return parsed_; }
  const std::string& route() const { return route_; }
  uint64_t id() const { return id_; }
  std::shared_ptr<StreamSink> sink = std::make_shared<StreamSink>();

 private:
  void on_token(const engine::TokenEvent& t, std::string& out);
  void on_finish(const engine::FinishEvent& f, std::string& out);
  std::string tgi_event(const engine::TokenEvent& t, const StepLogprobs& lp) const;
  void on_prompt_step(const StreamSink::Item& it, std::string& out);
  engine::FinishEvent counted(const engine::FinishEvent& f) const;  ///< prompt steps moved back to the prompt
  nlohmann::json openai_logprobs(bool with_prompt) const;        ///< choices[0].logprobs (null when not asked)
  /// Chat's choices[0].logprobs over the generated steps from `first` on (null when not asked or none).
  nlohmann::json chat_logprobs_from(size_t first) const;
  nlohmann::json take_chat_logprobs();  ///< chat stream: the steps not yet sent, then marks them sent
  nlohmann::json openai_prompt_logprobs() const;                 ///< vLLM's prompt_logprobs (null when not asked)
  nlohmann::json tgi_details_extra() const;                      ///< details.tokens / top_tokens / prefill
  std::string echo_text() const;

  ParsedRequest parsed_;
  std::string route_;
  engine::Clock::time_point received_;
  int eos_id_;
  uint64_t id_ = 0;
  OpenAIMeta meta_;
  std::string text_;                            ///< generated text so far
  int tokens_ = 0;
  std::optional<engine::Clock::time_point> first_, last_;
  std::optional<engine::TokenEvent> held_;      ///< TGI: the last token, sent together with the final event
  StepLogprobs held_lp_;
  int prompt_steps_ = 0;
  const TokenTexts* texts_ = nullptr;
  std::vector<StepLogprobs> prompt_lps_;        ///< one per prompt token (the first: none)
  std::string prompt_text_;                     ///< the forced prompt steps' text (echo of a token-id prompt)
  std::vector<engine::TokenEvent> gen_tokens_;  ///< generated tokens (kept when logprobs are asked, for details)
  std::vector<StepLogprobs> gen_lps_;
  size_t chat_lps_sent_ = 0;                    ///< chat stream: gen_lps_ already sent (a token without text waits)
  std::optional<engine::FinishEvent> finish_;
  bool started_ = false;                        ///< stream_start() was called
};

}  // namespace server
