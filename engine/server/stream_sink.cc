#include "stream_sink.h"

namespace server {

void StreamSink::on_token(const engine::TokenEvent& ev) {
  std::optional<engine::TokenLogprobs> lp;
  if (logprobs_k_ >= 0 && !ev.logits.empty()) lp = engine::token_logprobs(ev.logits, ev.token, logprobs_k_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    Item& it = queue_.emplace_back();
    it.token = ev;
    it.token.logits = {};  // a view valid only during on_token
    it.logprobs = std::move(lp);
  }
  cv_.notify_one();
}

void StreamSink::on_finish(const engine::FinishEvent& ev) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Item& it = queue_.emplace_back();
    it.is_finish = true;
    it.finish = ev;
    finished_ = true;
  }
  cv_.notify_one();
}

bool StreamSink::wait_pop(std::vector<Item>& out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (queue_.empty() && !cv_.wait_for(lock, timeout, [&] { return !queue_.empty(); })) return false;
  for (Item& it : queue_) out.push_back(std::move(it));
  queue_.clear();
  return true;
}

bool StreamSink::finished() const {
  std::lock_guard<std::mutex> lock(mu_);
  return finished_;
}

}  // namespace server
