#include "loadgen/clients/client_inprocess.h"

#include <cctype>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace loadgen {

namespace {

// The engine's settings errors name EngineConfig fields; loadgen's user set them with these flags
// (cli/resolve.cc's resolve_engine maps each flag to its field), so the message names the flags instead.
constexpr std::pair<std::string_view, std::string_view> kFlagOfField[] = {
    {"max_num_seqs", "--batch-size"},        {"max_num_batched_tokens", "--max-batched-tokens"},
    {"block_size", "--block-size"},          {"num_kv_blocks", "--kv-blocks"},
    {"kv_memory_bytes", "--kv-memory"},      {"gpu_memory_utilization", "--gpu-memory-utilization"},
    {"max_model_len", "--max-model-len"},    {"num_threads", "--threads"},
    {"dummy_seed", "--dummy-seed"}};

bool identifier_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// `message` with each field name that stands as a whole word replaced by its flag.
std::string with_flag_names(std::string_view message) {
  std::string out;
  size_t i = 0;
  while (i < message.size()) {
    if (!identifier_char(message[i])) {
      out += message[i++];
      continue;
    }
    size_t end = i;
    while (end < message.size() && identifier_char(message[end])) ++end;
    const std::string_view word = message.substr(i, end - i);
    std::string_view replacement = word;
    for (const auto& [field, flag] : kFlagOfField)
      if (word == field) replacement = flag;
    out += replacement;
    i = end;
  }
  return out;
}

std::unique_ptr<engine::Engine> make_engine(const engine::EngineConfig& config) {
  try {
    return std::make_unique<engine::Engine>(config);
  } catch (const std::invalid_argument& e) {  // a setting the engine refused (ModelLoadError passes as is)
    throw std::invalid_argument(with_flag_names(e.what()));
  }
}

}  // namespace

/// One request's sink. Runs on the engine thread: forwards each event at once and returns. A captured
/// step's logits come with its token.
class InProcessClient::Sink : public engine::RequestSink {
 public:
  Sink(InProcessClient* owner, uint64_t index) : owner_(owner), index_(index) {}

  void on_token(const engine::TokenEvent& ev) override {
    if (!ev.logits.empty()) owner_->callbacks_->on_logits(index_, ev.index, ev.token, ev.logits);
    owner_->callbacks_->on_chunk(index_, 1, ev.text, ev.time);
  }

  void on_finish(const engine::FinishEvent& ev) override {
    Outcome o;
    o.finish_reason = engine::to_string(ev.reason);
    const bool ok = ev.reason == engine::FinishReason::kLength || ev.reason == engine::FinishReason::kEos ||
                    ev.reason == engine::FinishReason::kStop;
    o.status = ok ? Status::kOk : Status::kFailed;
    if (!ok) o.reason = o.finish_reason + (ev.message.empty() ? "" : ": " + ev.message);
    o.prompt_tokens = ev.prompt_tokens;
    o.output_tokens = ev.output_tokens;
    o.count_source = TokenCountSource::kEngine;
    owner_->callbacks_->on_done(index_, o, ev.time);
    owner_->finished();
  }

 private:
  InProcessClient* owner_;
  uint64_t index_;
};

InProcessClient::InProcessClient(const engine::EngineConfig& config)
    : config_(config), engine_(make_engine(config)) {}

InProcessClient::~InProcessClient() {
  engine_.reset();  // aborts what is left; sinks still call back, so callbacks_ must outlive this client
}

void InProcessClient::start(ClientCallbacks* callbacks) { callbacks_ = callbacks; }

void InProcessClient::finished() {
  std::lock_guard lk(mu_);
  if (--in_flight_ == 0) cv_.notify_all();
}

void InProcessClient::send(const WorkItem& item) {
  engine::Request r;
  if (item.prompt_tokens.empty()) {
    r.prompt = item.prompt;
  } else {
    r.prompt_tokens = item.prompt_tokens;  // already holds bos
    r.add_bos = false;
  }
  r.sampling.max_new_tokens = item.max_new_tokens;
  r.sampling.temperature = item.temperature;
  r.sampling.top_k = item.top_k;
  r.sampling.top_p = item.top_p;
  r.sampling.seed = item.seed;
  r.sampling.ignore_eos = item.ignore_eos;
  r.forced_tokens = item.forced_tokens;
  r.capture_logits_steps = item.capture_logits_steps;
  r.tag = std::to_string(item.sample_id);
  auto sink = std::make_shared<Sink>(this, item.index);
  {
    std::lock_guard lk(mu_);
    ++in_flight_;
  }
  Outcome refused;
  callbacks_->on_sent(item.index, Clock::now());
  try {
    engine_->submit(std::move(r), std::move(sink));
    return;
  } catch (const engine::InvalidRequestError& e) {
    refused.status = Status::kRejected;
    refused.reason = std::string("invalid request: ") + e.what();
  } catch (const engine::QueueFullError& e) {
    refused.status = Status::kRejected;
    refused.reason = std::string("queue full: ") + e.what();
  } catch (const std::exception& e) {
    refused.status = Status::kFailed;
    refused.reason = std::string("submit failed: ") + e.what();
  }
  callbacks_->on_done(item.index, refused, Clock::now());
  finished();
}

bool InProcessClient::wait_all(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, timeout, [&] { return in_flight_ == 0; });
}

std::string InProcessClient::describe() const {
  const auto& i = engine_->info();
  return "in-process " + i.backend + " " + i.model + " batch " + std::to_string(i.max_num_seqs);
}

}  // namespace loadgen
