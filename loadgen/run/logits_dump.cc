#include "loadgen/run/logits_dump.h"

namespace loadgen {

LogitsDump::LogitsDump(const std::string& path, const accuracy::FileInfo& info,
                       const accuracy::WriterOptions& options, const std::vector<WorkItem>& items)
    : items_(items),
      writer_(std::make_unique<accuracy::LogitsWriter>(path, info, options)),
      pending_(items.size()) {
  thread_ = std::thread([this] { writer_loop(); });
}

LogitsDump::~LogitsDump() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  writer_.reset();  // not closed: the writer removes its temporary file
}

void LogitsDump::on_logits(uint64_t index, int step, int32_t token, std::span<const float> logits) {
  if (index >= pending_.size()) return;
  Pending& p = pending_[index];
  if (step != static_cast<int>(p.tokens.size())) return;  // steps arrive in order; anything else is ignored
  p.tokens.push_back(token);
  p.logits.insert(p.logits.end(), logits.begin(), logits.end());
}

void LogitsDump::on_done(uint64_t index, const Outcome& outcome) {
  if (index >= pending_.size()) return;
  std::lock_guard lk(mu_);
  if (outcome.status != Status::kOk || pending_[index].tokens.empty()) {
    pending_[index] = Pending{};
    ++dropped_;
    return;
  }
  ready_.push_back(index);
  cv_.notify_one();
}

void LogitsDump::writer_loop() {
  for (;;) {
    uint64_t index;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !ready_.empty(); });
      if (ready_.empty()) return;
      index = ready_.front();
      ready_.pop_front();
    }
    Pending p = std::move(pending_[index]);
    pending_[index] = Pending{};
    if (error_) continue;
    try {
      accuracy::RequestLogits r;
      const WorkItem& item = items_[index];
      r.id = std::to_string(item.sample_id);
      r.prompt_tokens = item.prompt_tokens;
      r.tokens = std::move(p.tokens);
      r.logits = std::move(p.logits);
      r.prompt_text = item.prompt;
      writer_->write(r);
      std::lock_guard lk(mu_);
      ++written_;
    } catch (...) {
      error_ = std::current_exception();
    }
  }
}

void LogitsDump::close() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (error_) std::rethrow_exception(error_);
  writer_->close();
}

int64_t LogitsDump::written() const {
  std::lock_guard lk(mu_);
  return written_;
}

}  // namespace loadgen
