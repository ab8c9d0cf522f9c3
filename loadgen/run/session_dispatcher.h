// Multi-turn sessions: each session's first turn is sent at its arrival (Poisson sessions at -X sessions/s);
// turn k+1 is released when turn k has ended plus the user's think time, its prompt the conversation so far
// (every earlier message, and the answers as they were streamed back) plus its own new message. Latency of
// a later turn counts from that release time, as a first turn's does from its arrival. A turn that fails
// ends its session: the session's later turns end failed ("not sent: ..."), so every request is accounted for.
//
// The dispatcher stands between the client and the recorder (it forwards every event), collecting each
// answer's text as it streams, and sends from its own thread (the caller's) at the release times.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "loadgen/clients/client.h"
#include "loadgen/run/recorder.h"
#include "loadgen/workload/workload.h"

namespace loadgen {

struct SessionSchedule {
  std::vector<std::vector<size_t>> sessions;  ///< the item indices of each session, in turn order
  std::vector<double> start_s;                ///< per session: its first turn's arrival (s from t0)
  std::vector<double> think_s;                ///< per item: the pause between the previous turn's end and it
};

class SessionDispatcher final : public ClientCallbacks {
 public:
  /// `items[i]` of a later turn holds only its new message (Workload's multi-turn items); `tokenize` measures
  /// a released turn's prompt (the recorder's prompt length until the server gives its own).
  SessionDispatcher(std::vector<WorkItem> items, SessionSchedule schedule, Recorder& recorder, TokenizeFn tokenize);

  void on_sent(uint64_t index, Clock::time_point t) override;
  void on_chunk(uint64_t index, int n_tokens, std::string_view text, Clock::time_point t) override;
  void on_logits(uint64_t index, int step, int32_t token, std::span<const float> logits) override;
  void on_done(uint64_t index, const Outcome& outcome, Clock::time_point t) override;

  /// Sends every turn at its time on the calling thread; returns when every turn has been sent or ended
  /// unsent (or `stop`, may be null, is set). Returns the number of requests handed to the client.
  int64_t run(Client& client, Clock::time_point t0, const std::atomic<bool>* stop);

 private:
  struct Ended {
    uint64_t index;
    bool ok;
    std::string why;  ///< when not ok: status and reason
    Clock::time_point t;
  };
  std::vector<WorkItem> items_;
  SessionSchedule schedule_;
  Recorder& recorder_;
  TokenizeFn tokenize_;
  std::vector<size_t> session_of_;         ///< per item
  std::vector<std::string> answer_;        ///< per item: the streamed text (written by the client's thread)
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Ended> ended_;               ///< turns that ended since the dispatcher last looked
};

}  // namespace loadgen
