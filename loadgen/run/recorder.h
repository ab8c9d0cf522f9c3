// The recorder: one raw record per scheduled request, filled from the client's callbacks (any thread).
// Callbacks only append to that request's own record under its own uncontended lock, plus a few atomic
// counters for the progress line; nothing is computed here (metrics.cc does that afterwards).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "loadgen/clients/client.h"
#include "results/record_log.h"

namespace loadgen {

struct RequestRecord {
  uint64_t index = 0;
  int64_t sample_id = 0;
  int64_t session_id = -1;         ///< multi-turn: its session (-1: none)
  int turn = 0;                    ///< multi-turn: its turn index
  double scheduled_s = 0;
  double send_s = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> chunk_times_s;
  std::vector<int> chunk_tokens;
  double end_s = std::numeric_limits<double>::quiet_NaN();
  bool done = false;
  Status status = Status::kFailed;
  std::string reason;
  std::string finish_reason;
  int prompt_tokens = -1;          ///< the client's count, else the workload's
  int output_tokens = -1;          ///< the client's count, else the sum of chunk tokens
  TokenCountSource count_source = TokenCountSource::kChunks;
  FirstToken first_token = FirstToken::kNone;  ///< what the first chunk was (content unless the client says)
  bool aborted = false;            ///< cut off by the run (abort_unfinished), not ended by the client
  std::vector<float> chunk_lag_s;  ///< sampled chunks (the first and every 8th): record time - arrival time
};

/// Optional second listener for the logits capture (e.g. the HDF5 dump); called on the client's thread.
class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  virtual void on_logits(uint64_t index, int step, int32_t token, std::span<const float> logits) {}
  virtual void on_logprobs(uint64_t index, int step, const StepLogprobs& lp) {}
  /// ClientCallbacks::takes_logprobs_json / on_logprobs_json, passed on by the recorder.
  virtual bool takes_logprobs_json(uint64_t index) const { return false; }
  virtual void on_logprobs_json(uint64_t index, LogprobsLayout layout, std::string_view json) {}
  virtual void on_done(uint64_t index, const Outcome& outcome) = 0;
};

class Recorder : public ClientCallbacks {
 public:
  /// `scheduled_s[i]`: arrival of request i (s from t0); `prompt_lens[i]`: the workload's prompt length;
  /// `expected_tokens[i]`: chunk capacity reserved up front so callbacks do not allocate.
  Recorder(Clock::time_point t0, std::vector<int64_t> sample_ids, std::vector<double> scheduled_s,
           std::vector<int> prompt_lens, std::vector<int> expected_tokens);

  void set_observer(RequestObserver* o) { observer_.store(o); }
  /// Each request's row is appended to `log` when it ends, before it counts as done (may be null).
  void set_record_log(std::shared_ptr<results::RecordLog> log) { log_ = std::move(log); }

  void on_sent(uint64_t index, Clock::time_point t) override;
  void on_chunk(uint64_t index, int n_tokens, std::string_view text, Clock::time_point t) override;
  void on_logits(uint64_t index, int step, int32_t token, std::span<const float> logits) override;
  void on_logprobs(uint64_t index, int step, const StepLogprobs& lp) override;
  bool takes_logprobs_json(uint64_t index) const override;
  void on_logprobs_json(uint64_t index, LogprobsLayout layout, std::string_view json) override;
  void on_done(uint64_t index, const Outcome& outcome, Clock::time_point t) override;

  /// A request released at run time (a later turn of a session): its arrival, in s from t0, and its prompt's
  /// length as the workload measured it (< 0: keep the one given at construction). Called before it is sent.
  void schedule(uint64_t index, double scheduled_s, int prompt_tokens);

  /// The dispatcher's own failure to hand a request over (client.send threw): ends it as failed.
  void fail(uint64_t index, const std::string& reason, Clock::time_point t);

  size_t size() const { return slots_.size(); }
  int64_t sent() const { return sent_.load(std::memory_order_relaxed); }
  int64_t done() const { return done_.load(std::memory_order_relaxed); }
  int64_t tokens() const { return tokens_.load(std::memory_order_relaxed); }
  int64_t duplicate_done() const { return duplicate_done_.load(); }
  /// Ends every request sent and not yet done as failed `reason` at `t` (each appended to the record log);
  /// their later callbacks are ignored. Returns how many.
  int64_t abort_unfinished(const std::string& reason, Clock::time_point t);
  int64_t aborted() const { return aborted_.load(); }
  /// Nanoseconds spent inside the callbacks (loadgen's own cost on the client's threads): on_done timed
  /// every time, on_chunk on a sample of its calls (see kChunkTimingStride), scaled to all of them.
  int64_t callback_ns() const;
  static constexpr size_t kChunkTimingStride = 8;
  /// First tokens so far and the sum of their TTFTs in microseconds (for --stop-on-saturation).
  int64_t first_tokens() const { return first_tokens_.load(std::memory_order_relaxed); }
  int64_t ttft_sum_us() const { return ttft_sum_us_.load(std::memory_order_relaxed); }
  /// Waits until at least `n` requests are done or `deadline` passes; true if reached.
  bool wait_done_at_least(int64_t n, Clock::time_point deadline);

  /// Copies out the records; requests without on_done become failed with `unfinished_reason`.
  std::vector<RequestRecord> records(const std::string& unfinished_reason) const;
  Clock::time_point t0() const { return t0_; }

 private:
  double secs(Clock::time_point t) const { return std::chrono::duration<double>(t - t0_).count(); }
  struct Slot {
    mutable std::mutex mu;
    RequestRecord rec;
    std::atomic<uint32_t> chunks_seen{0};  ///< on_chunk calls, for the sampled cost measurement
  };
  Clock::time_point t0_;
  std::vector<std::unique_ptr<Slot>> slots_;
  void end_locked(Slot& s);  // appends the ended record to the log
  std::atomic<RequestObserver*> observer_{nullptr};
  std::shared_ptr<results::RecordLog> log_;  // shared: a recorder kept alive for late callbacks keeps it too
  std::atomic<int64_t> sent_{0}, done_{0}, tokens_{0}, duplicate_done_{0}, aborted_{0}, callback_ns_{0}, first_tokens_{0},
      ttft_sum_us_{0}, chunk_timed_ns_{0};
  void notify_done(int64_t done_now);
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  std::atomic<int64_t> wait_target_{std::numeric_limits<int64_t>::max()};  ///< what wait_done_at_least waits for
};

}  // namespace loadgen
