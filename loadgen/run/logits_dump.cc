#include "loadgen/run/logits_dump.h"

#include <filesystem>

#include "accuracy/npy_dir.h"
#include "common/thread_name.h"
#include "common/timestamp.h"

namespace loadgen {

LogitsDump::LogitsDump(const std::string& path, const accuracy::FileInfo& info,
                       const accuracy::WriterOptions& options, const std::vector<WorkItem>& items,
                       const std::string& npy_dir)
    : items_(items),
      writer_(path.empty() ? nullptr : std::make_unique<accuracy::LogitsWriter>(path, info, options)),
      npy_dir_(npy_dir),
      vocab_(info.vocab_size),
      pending_(items.size()) {
  if (!npy_dir_.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(npy_dir_, ec);
    if (!std::filesystem::is_directory(npy_dir_))
      throw accuracy::LogitsFileError("--dump-logits-npy " + npy_dir_ + ": cannot create the folder");
    // One timestamp for the run, in the file-name template's first field (no '_' of its own).
    npy_timestamp_ = common::local_timestamp();
    for (char& ch : npy_timestamp_)
      if (ch == '_') ch = '-';
  }
  thread_ = std::thread([this] {
    common::name_this_thread("lg-logits");
    writer_loop();
  });
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
      r.id = logits_id_of(item);
      r.prompt_tokens = item.prompt_tokens;
      r.tokens = std::move(p.tokens);
      r.logits = std::move(p.logits);
      r.prompt_text = item.prompt;
      if (!npy_dir_.empty()) accuracy::write_npy_request(npy_dir_, npy_timestamp_, r.id, r.n_steps(), vocab_, r.logits);
      if (writer_) writer_->write(r);
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
  if (writer_) writer_->close();
}

int64_t LogitsDump::written() const {
  std::lock_guard lk(mu_);
  return written_;
}

}  // namespace loadgen
