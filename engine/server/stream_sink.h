// The bridge between the engine thread and an HTTP worker: the engine's RequestSink for one request only
// copies each event into a queue (the engine thread must not wait on a socket), and the worker serving
// that request's connection drains the queue and writes the events out.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <vector>

#include "engine/engine.h"

namespace server {

class StreamSink : public engine::RequestSink {
 public:
  struct Item {
    bool is_finish = false;
    engine::TokenEvent token;    ///< when !is_finish (without logits)
    engine::FinishEvent finish;  ///< when is_finish
  };

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
};

}  // namespace server
