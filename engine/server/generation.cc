#include "generation.h"

#include "metrics.h"

namespace server {

Generation::Generation(ParsedRequest parsed, std::string route, engine::Clock::time_point received, int eos_id,
                       int64_t created_unix)
    : parsed_(std::move(parsed)), route_(std::move(route)), received_(received), eos_id_(eos_id) {
  meta_.created = created_unix;
  meta_.model = parsed_.model;
}

void Generation::set_id(uint64_t id) {
  id_ = id;
  meta_.id = (parsed_.api == Api::kOpenAIChat ? "chatcmpl-" : "cmpl-") + std::to_string(id);
}

std::string Generation::stream_start() {
  // vLLM's first chat frame carries only the role; a client must not take it for the first token.
  if (started_) return "";
  started_ = true;
  if (parsed_.stream && parsed_.api == Api::kOpenAIChat) return openai_chat_role_chunk(meta_);
  return "";
}

bool Generation::consume(std::vector<StreamSink::Item>& items, std::string& out) {
  for (StreamSink::Item& it : items) {
    if (finish_) break;  // nothing follows on_finish
    if (it.is_finish) on_finish(it.finish, out);
    else on_token(it.token, out);
  }
  items.clear();
  return finish_.has_value();
}

std::string Generation::tgi_event(const engine::TokenEvent& t) const {
  return tgi_stream_event(&t, t.token == eos_id_, nullptr, nullptr);
}

void Generation::on_token(const engine::TokenEvent& t, std::string& out) {
  if (!first_) first_ = t.time;
  last_ = t.time;
  ++tokens_;
  text_ += t.text;
  if (!parsed_.stream) return;
  if (parsed_.api == Api::kOpenAI) {
    out += openai_token_chunk(meta_, t.text);
    return;
  }
  if (parsed_.api == Api::kOpenAIChat) {
    // A token with no text yet (bytes of a character that ends later) has no delta of its own, as in vLLM.
    if (!t.text.empty()) out += openai_chat_token_chunk(meta_, t.text);
    return;
  }
  // TGI puts the last token and generated_text in one event. When this token must be the last (the length
  // limit), hold it until the finish event, which the engine sends right after it.
  if (held_) {
    out += tgi_event(*held_);
    held_.reset();
  }
  if (t.index + 1 >= parsed_.request.sampling.max_new_tokens) held_ = t;
  else out += tgi_event(t);
}

void Generation::on_finish(const engine::FinishEvent& f, std::string& out) {
  finish_ = f;
  if (!parsed_.stream) return;
  const bool failed = f.reason == engine::FinishReason::kError || f.reason == engine::FinishReason::kAborted;
  const std::string why = f.reason == engine::FinishReason::kAborted
                              ? "aborted" + (f.message.empty() ? std::string() : ": " + f.message)
                              : "generation failed: " + f.message;
  if (parsed_.api == Api::kOpenAI) {
    out += failed ? openai_error_event(why) : openai_final_chunk(meta_, f);
    out += kOpenAIDone;
    return;
  }
  if (parsed_.api == Api::kOpenAIChat) {
    if (failed) {
      out += openai_error_event(why);
    } else {
      out += openai_chat_final_chunk(meta_, f);
      if (parsed_.include_usage) out += openai_usage_chunk(meta_, f);
    }
    out += kOpenAIDone;
    return;
  }
  if (failed) {
    if (held_) out += tgi_event(*held_);
    out += tgi_error_event(why, f.reason == engine::FinishReason::kAborted ? "aborted" : "generation");
  } else {
    TgiFinal fin{(parsed_.return_full_text ? parsed_.request.prompt : std::string()) + text_, parsed_.details,
                 parsed_.request.sampling.seed};
    out += tgi_stream_event(held_ ? &*held_ : nullptr, held_ && held_->token == eos_id_, &fin, &f);
  }
  held_.reset();
}

int Generation::response_status() const {
  if (!finish_) return 500;
  if (finish_->reason == engine::FinishReason::kError) return 500;
  if (finish_->reason == engine::FinishReason::kAborted) return 503;
  return 200;
}

std::string Generation::response_body() const {
  const int status = response_status();
  if (status != 200) {
    const std::string msg = !finish_ ? "no result"
                            : finish_->reason == engine::FinishReason::kAborted ? "aborted: " + finish_->message
                                                                               : "generation failed: " + finish_->message;
    return openai_dialect(parsed_.api) ? openai_error_body(msg, "server_error", "") : tgi_error_body(msg, "generation", "");
  }
  if (parsed_.api == Api::kOpenAI) return openai_response(meta_, text_, *finish_);
  if (parsed_.api == Api::kOpenAIChat) return openai_chat_response(meta_, text_, *finish_);
  TgiFinal fin{(parsed_.return_full_text ? parsed_.request.prompt : std::string()) + text_, parsed_.details,
               parsed_.request.sampling.seed};
  return tgi_response(fin, *finish_);
}

void Generation::record_metrics(ServerMetrics& m) const {
  if (!finish_) return;
  auto secs = [](engine::Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const double ttft = first_ ? secs(*first_ - received_) : -1;
  const double tpot = (first_ && tokens_ > 1) ? secs(*last_ - *first_) / (tokens_ - 1) : -1;
  m.count_generation(finish_->reason, finish_->prompt_tokens, finish_->output_tokens, ttft, tpot,
                     secs(finish_->time - received_));
}

}  // namespace server
