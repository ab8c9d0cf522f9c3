// The bridge between the engine thread and an HTTP worker: the engine's RequestSink for one request only
// copies each event into a queue (the engine thread must not wait on a socket), and the worker serving
// that request's connection drains the queue and writes the events out.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <vector>

#include <optional>

#include "engine/engine.h"
#include "engine/logprobs.h"

namespace server {

class StreamSink : public engine::RequestSink {
 public:
  struct Item {
    bool is_finish = false;
    engine::TokenEvent token;    ///< when !is_finish (without logits)
    engine::FinishEvent finish;  ///< when is_finish
    std::optional<engine::TokenLogprobs> logprobs;  ///< the token's, when asked (set_logprobs) and captured
  };

  /// Each token's log-probability and its `top_k` best (top_k >= 0), computed here from the step's logits
  /// while they are valid (on the engine thread). Call before submitting.
  void set_logprobs(int top_k) { logprobs_k_ = top_k; }

  void on_token(const engine::TokenEvent& ev) override;
  void on_finish(const engine::FinishEvent& ev) override;

  /// Moves every queued event into `out` (appending); waits up to `timeout` when none is queued.
  /// Returns false when the wait timed out with nothing to give.
  bool wait_pop(std::vector<Item>& out, std::chrono::milliseconds timeout);
  /// on_finish has been called (it may still be queued).
  bool finished() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool finished_ = false;
  int logprobs_k_ = -1;
};

}  // namespace server
