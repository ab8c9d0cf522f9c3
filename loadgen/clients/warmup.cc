#include "loadgen/clients/warmup.h"

#include <string>

namespace loadgen {

void WarmupRouter::on_sent(uint64_t index, Clock::time_point t) {
  if (index < kWarmupIndexBase) recorder_.load(std::memory_order_acquire)->on_sent(index, t);
}

void WarmupRouter::on_chunk(uint64_t index, int n_tokens, std::string_view text, Clock::time_point t) {
  if (index < kWarmupIndexBase) recorder_.load(std::memory_order_acquire)->on_chunk(index, n_tokens, text, t);
}

void WarmupRouter::on_logits(uint64_t index, int step, int32_t token, std::span<const float> logits) {
  if (index < kWarmupIndexBase) recorder_.load(std::memory_order_acquire)->on_logits(index, step, token, logits);
}

void WarmupRouter::on_logprobs(uint64_t index, int step, const StepLogprobs& lp) {
  if (index < kWarmupIndexBase) recorder_.load(std::memory_order_acquire)->on_logprobs(index, step, lp);
}

bool WarmupRouter::takes_logprobs_json(uint64_t index) const {
  return index < kWarmupIndexBase && recorder_.load(std::memory_order_acquire)->takes_logprobs_json(index);
}

void WarmupRouter::on_logprobs_json(uint64_t index, LogprobsLayout layout, std::string_view json) {
  if (index < kWarmupIndexBase) recorder_.load(std::memory_order_acquire)->on_logprobs_json(index, layout, json);
}

void WarmupRouter::on_done(uint64_t index, const Outcome& outcome, Clock::time_point t) {
  if (index < kWarmupIndexBase) {
    recorder_.load(std::memory_order_acquire)->on_done(index, outcome, t);
    return;
  }
  std::lock_guard<std::mutex> l(mu_);
  ++done_;
  if (outcome.status == Status::kOk) ++ok_;
  else if (first_failure_.empty()) first_failure_ = outcome.reason.empty() ? to_string(outcome.status) : outcome.reason;
  last_done_ = t;
}

WarmupResult WarmupRouter::run(Client& client, const std::vector<WorkItem>& items, int n, double timeout_s) {
  WarmupResult r;
  r.requests = n;
  if (n <= 0 || items.empty()) return r;
  const Clock::time_point t0 = Clock::now();
  for (int k = 0; k < n; ++k) {
    WorkItem w = items[static_cast<size_t>(k) % items.size()];
    w.index = kWarmupIndexBase + static_cast<uint64_t>(k);
    w.capture_logits_steps = 0;
    w.top_logprobs = -1;
    client.send(w);
  }
  client.wait_all(std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  std::lock_guard<std::mutex> l(mu_);
  r.done = done_;
  r.ok = ok_;
  r.seconds = std::chrono::duration<double>(last_done_ - t0).count();
  r.first_failure = first_failure_;
  return r;
}

}  // namespace loadgen
