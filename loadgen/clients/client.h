// The one interface loadgen talks to what it measures through (MLPerf LoadGen's SUT, narrowed to LLMs):
// send a request, get its events back. InProcessClient (our engine) and HttpClient (any server) implement it;
// loadgen knows nothing of models.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/enum_names.h"
#include "loadgen/clients/token_logprobs.h"
#include "results/status.h"

namespace loadgen {

using Clock = std::chrono::steady_clock;

/// One message of a conversation, as a chat API sends it: role "system", "user" or "assistant".
struct ChatMessage {
  std::string role;
  std::string content;
  bool operator==(const ChatMessage&) const = default;
};

/// One request as loadgen sends it.
struct WorkItem {
  uint64_t index = 0;            ///< position in the run's schedule (0..N-1)
  int64_t sample_id = 0;         ///< the dataset record it came from (the logits file's request id)
  std::string prompt;            ///< full prompt text (template applied; a conversation's whole history)
  /// The conversation this request continues, ending with the new user message (a chat API sends these;
  /// the completions APIs send `prompt`, the same history as one text). Empty: the prompt alone.
  std::vector<ChatMessage> messages;
  int64_t session_id = -1;       ///< multi-turn: the conversation it belongs to; -1 for a single request
  int turn = 0;                  ///< multi-turn: 0-based turn index within its session
  std::vector<int32_t> prompt_tokens;  ///< when non-empty, sent as token ids (in-process; teacher forcing)
  int max_new_tokens = 128;
  bool ignore_eos = true;
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  std::vector<int32_t> forced_tokens;  ///< teacher forcing (in-process only)
  int capture_logits_steps = 0;        ///< in-process only
  int top_logprobs = -1;               ///< >= 0: ask a server for each token's logprob and its K best (--top-logprobs)
  /// Teacher forcing over HTTP (--reference with --endpoint): prompt_tokens holds BASE's prompt and tokens, sent
  /// as token ids to be scored; the last `score_steps` positions are BASE's steps. 0: a plain request.
  int score_steps = 0;
  bool prompt_as_ids = false;          ///< a server gets prompt_tokens as token ids (OpenAI completions), not the text
  /// Its id in logits files (--dump-logits, --dump-logprobs, .npy names), unique in the run and the same in
  /// every run of the same workload: the sample id, then ".t<turn>" past a conversation's first turn and
  /// ".r<k>" for the k-th repeat of the same record (-n past the dataset's size). Empty: the sample id.
  std::string logits_id;
};

/// item.logits_id, or the sample id when it has none.
inline std::string logits_id_of(const WorkItem& item) {
  return item.logits_id.empty() ? std::to_string(item.sample_id) : item.logits_id;
}

/// How a request ended (results/status.h: the one name table, shared with the files and reports).
using results::Status;
using results::to_string;

/// Where an output token count came from: the engine itself, the server's usage field, or re-tokenizing text.
enum class TokenCountSource { kEngine, kUsage, kRetokenized, kChunks };
inline constexpr auto kTokenCountSourceNames = common::enum_names<TokenCountSource>(
    {{TokenCountSource::kEngine, "engine"}, {TokenCountSource::kUsage, "usage"},
     {TokenCountSource::kRetokenized, "retokenized"}, {TokenCountSource::kChunks, "chunks"}});
inline const char* to_string(TokenCountSource s) { return kTokenCountSourceNames.name(s); }

/// What a request's first token was (TTFT is the time of the first token of either kind): the answer's own
/// content, or a reasoning model's reasoning_content delta before it.
enum class FirstToken { kNone, kContent, kReasoning };
inline constexpr auto kFirstTokenNames = common::enum_names<FirstToken>(
    {{FirstToken::kNone, "none"}, {FirstToken::kContent, "content"}, {FirstToken::kReasoning, "reasoning"}});
inline const char* to_string(FirstToken f) { return kFirstTokenNames.name(f); }

struct Outcome {
  Status status = Status::kOk;
  std::string reason;            ///< for kRejected/kFailed: e.g. "HTTP 503: {...}", "connection reset"
  std::string finish_reason;     ///< length | eos | stop | aborted (when the server says)
  int prompt_tokens = -1;        ///< -1: unknown
  int output_tokens = -1;        ///< -1: unknown (the recorder then counts chunks or re-tokenizes)
  TokenCountSource count_source = TokenCountSource::kEngine;
  std::string text;              ///< generated text, when the client has it
  FirstToken first_token = FirstToken::kNone;  ///< kind of the first token chunk (kNone: none came)
};

/// Receives each request's events. Called from the client's own thread(s); implementations must be
/// thread-safe and cheap.
class ClientCallbacks {
 public:
  virtual ~ClientCallbacks() = default;
  /// The request left the client (after connection setup for HTTP).
  virtual void on_sent(uint64_t index, Clock::time_point t) = 0;
  /// A streamed chunk holding `n_tokens` tokens (1 for the in-process engine) and its text.
  virtual void on_chunk(uint64_t index, int n_tokens, std::string_view text, Clock::time_point t) = 0;
  /// Raw logits of one step (only when capture_logits_steps > 0).
  virtual void on_logits(uint64_t index, int step, int32_t token, std::span<const float> logits) {}
  /// A server's log-probabilities of one step (only when top_logprobs >= 0), steps in order from 0.
  virtual void on_logprobs(uint64_t index, int step, const StepLogprobs& lp) {}
  /// Whether request `index`'s generated-token logprobs may come as on_logprobs_json instead: the receiver
  /// reads the JSON itself, off the client's thread (the --dump-logprobs writer does), so the thread that
  /// timestamps chunks only finds where the field ends. Asked once per request, before it is sent.
  virtual bool takes_logprobs_json(uint64_t index) const { return false; }
  /// One event's choices[0].logprobs as the server sent it (its brackets and quotes matched, nothing else
  /// checked), events in order. Steps the client read itself may still come through on_logprobs between them.
  virtual void on_logprobs_json(uint64_t index, LogprobsLayout layout, std::string_view json) {}
  /// Exactly once per request, last.
  virtual void on_done(uint64_t index, const Outcome& outcome, Clock::time_point t) = 0;
};

class Client {
 public:
  virtual ~Client() = default;
  /// Called once before the first send.
  virtual void start(ClientCallbacks* callbacks) = 0;
  /// Hands one request over without blocking on its completion.
  virtual void send(const WorkItem& item) = 0;
  /// Blocks until every sent request has had on_done (or `timeout` passed: returns false).
  virtual bool wait_all(std::chrono::milliseconds timeout) = 0;
  /// One line: what is being measured ("in-process cpu dummy:tiny batch 64", "http openai http://...").
  virtual std::string describe() const = 0;
  /// Seconds the client's own event loop has spent working (outside its wait for sockets) since start();
  /// negative for a client without one (the in-process engine calls back on its own thread).
  virtual double busy_seconds() const { return -1; }
  /// CPU seconds the client's event-loop thread has used since start() (user + system; its reads of the
  /// sockets included); negative without one. Per request, the ceiling of that one thread.
  virtual double cpu_seconds() const { return -1; }
};

}  // namespace loadgen
