// One HTTP response as the client receives it: status and content type, then the body in arbitrary pieces.
// A streamed (text/event-stream) body is parsed as it arrives and each token chunk is reported at its
// arrival time; any other body (a non-streamed JSON answer or an HTTP error) is kept and judged at the
// end. Turns all of it into the request's Outcome. No sockets here: tests feed it bytes directly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "loadgen/clients/client.h"
#include "loadgen/clients/http_api.h"
#include "loadgen/clients/logprobs_deferred.h"
#include "loadgen/clients/sse_parser.h"

namespace engine { class Tokenizer; }

namespace loadgen {

class HttpResponse {
 public:
  /// `tokenizer` (may be null) counts output tokens when the server gives no usage.
  HttpResponse(uint64_t index, ClientCallbacks* callbacks, const engine::Tokenizer* tokenizer)
      : index_(index), callbacks_(callbacks), tokenizer_(tokenizer) {}

  /// What the request asked for: logprobs per token (reported through on_logprobs as they arrive), or prompt
  /// scoring of the last `item.score_steps` positions of item.prompt_tokens (reported at the end).
  void expect(const WorkItem& item);

  /// Before the first body byte (or at the end, for an empty body).
  void on_headers(long http_status, std::string_view content_type);
  bool headers_seen() const { return headers_seen_; }
  /// The next body bytes, received at `t`.
  void on_body(std::string_view bytes, Clock::time_point t);
  /// The transfer completed without a transport error: the Outcome from what was received.
  Outcome finish(Clock::time_point t);
  /// The transfer failed (timeout, reset, refused...): the Outcome with `reason`, keeping what arrived.
  Outcome fail(std::string reason);

  int token_events() const { return token_events_; }

 private:
  void on_event(std::string_view data, Clock::time_point t);
  void count_tokens(Outcome& out) const;
  ApiEvent decode(std::string_view data);  ///< the event, its logprobs deferred (logprobs_json_) when taken
  void take_logprobs(ApiEvent& ev);
  std::string report_scores();  ///< prompt scoring: on_logprobs for BASE's steps; "" or why they are missing

  uint64_t index_;
  ClientCallbacks* callbacks_;
  const engine::Tokenizer* tokenizer_;
  bool headers_seen_ = false;
  long status_ = 0;
  bool streamed_ = false;       ///< text/event-stream with a 2xx status
  SseParser sse_;
  std::string raw_;             ///< non-streamed body (JSON answer or error text), bounded
  std::string text_;            ///< generated text so far
  int token_events_ = 0;        ///< token events seen
  FirstToken first_token_ = FirstToken::kNone;
  bool done_marker_ = false;    ///< [DONE] or TGI's final event
  int usage_prompt_ = -1, usage_completion_ = -1;
  std::string finish_reason_;
  std::string stream_error_;
  bool want_logprobs_ = false;
  bool json_logprobs_ = false;  ///< the callbacks read choices[0].logprobs themselves (takes_logprobs_json)
  LogprobsJson deferred_;       ///< the last decoded event's, when json_logprobs_
  int score_steps_ = 0;
  std::vector<int32_t> prompt_ids_;                          ///< scoring: the ids sent
  int logprob_steps_ = 0;                                    ///< generated steps reported so far
  std::vector<StepLogprobs> echoed_;                         ///< scoring: choices[0].logprobs in order (echo)
  std::vector<std::optional<StepLogprobs>> prompt_scores_;   ///< scoring: prompt_logprobs / prefill
};

}  // namespace loadgen
