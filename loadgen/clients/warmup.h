// The warm-up before a timed run: requests that pay for what only the first ones pay (CUDA graph capture,
// cuBLAS and allocator set-up, connection set-up, a server's lazy loading) and are then forgotten.
//
// A Client is started once with one ClientCallbacks, so WarmupRouter stands in front of the recorder: events
// of warm-up requests (indices from kWarmupIndexBase) are tallied and dropped, all others go to the
// recorder, which is attached only once the warm-up is over. With no recorder at all it is also how the
// endpoint check before a remote run sends its one request.
#pragma once

#include <atomic>
#include <mutex>
#include <vector>

#include "loadgen/clients/client.h"

namespace loadgen {

/// What the warm-up did: its requests are not in the records or the summary's figures.
struct WarmupResult {
  int requests = 0, done = 0, ok = 0;  ///< sent; ended (ok or not) within the timeout; ok
  double seconds = 0;           ///< first send -> last done
  std::string first_failure;    ///< reason of the first request that was not ok
};

inline constexpr uint64_t kWarmupIndexBase = uint64_t(1) << 62;

class WarmupRouter final : public ClientCallbacks {
 public:
  /// Where the events of the run's own requests go from now on (set before the first of them is sent).
  void attach(ClientCallbacks* recorder) { recorder_.store(recorder, std::memory_order_release); }

  void on_sent(uint64_t index, Clock::time_point t) override;
  void on_chunk(uint64_t index, int n_tokens, std::string_view text, Clock::time_point t) override;
  void on_logits(uint64_t index, int step, int32_t token, std::span<const float> logits) override;
  void on_logprobs(uint64_t index, int step, const StepLogprobs& lp) override;
  bool takes_logprobs_json(uint64_t index) const override;
  void on_logprobs_json(uint64_t index, LogprobsLayout layout, std::string_view json) override;
  void on_done(uint64_t index, const Outcome& outcome, Clock::time_point t) override;

  /// Sends `n` copies of items[0], items[1], ... (cycled; no logits capture) at once through `client`,
  /// which must have been started with this router, and waits for all of them, at most `timeout_s`. When
  /// result.done < n some are still in flight, and the router must outlive the client.
  WarmupResult run(Client& client, const std::vector<WorkItem>& items, int n, double timeout_s);

 private:
  std::atomic<ClientCallbacks*> recorder_{nullptr};
  std::mutex mu_;
  int done_ = 0, ok_ = 0;
  std::string first_failure_;
  Clock::time_point last_done_{};
};

}  // namespace loadgen
