#include "generation.h"

#include "metrics.h"

namespace server {

Generation::Generation(ParsedRequest parsed, std::string route, engine::Clock::time_point received, int eos_id,
                       int64_t created_unix, int prompt_steps, const TokenTexts* texts)
    : parsed_(std::move(parsed)), route_(std::move(route)), received_(received), eos_id_(eos_id),
      prompt_steps_(prompt_steps), texts_(texts) {
  meta_.created = created_unix;
  meta_.model = parsed_.model;
  if (parsed_.logprobs.any() && texts_) sink->set_logprobs(parsed_.logprobs.max_k());
  if (prompt_steps_ > 0) prompt_lps_.push_back(std::nullopt);  // the first prompt token has no probability
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
    if (it.is_finish) {
      on_finish(it.finish, out);
    } else if (it.token.index < prompt_steps_) {
      on_prompt_step(it, out);
    } else {
      if (parsed_.logprobs.any()) gen_lps_.push_back(it.logprobs);
      on_token(it.token, out);
    }
  }
  items.clear();
  return finish_.has_value();
}

std::string Generation::tgi_event(const engine::TokenEvent& t, const StepLogprobs& lp) const {
  const int k = parsed_.logprobs.top_k;
  if (!lp || k < 0 || !texts_) return tgi_stream_event(&t, t.token == eos_id_, nullptr, nullptr);
  return tgi_stream_event(&t, t.token == eos_id_, nullptr, nullptr, lp->logprob,
                          k > 0 ? tgi_top_tokens(*lp, *texts_, k, eos_id_) : nlohmann::json(nullptr));
}

void Generation::on_prompt_step(const StreamSink::Item& it, std::string& out) {
  prompt_lps_.push_back(it.logprobs);
  prompt_text_ += it.token.text;
  // vLLM and OpenAI put the prompt's scores (and the echoed prompt) in the first chunk.
  if (parsed_.stream && parsed_.api == Api::kOpenAI && it.token.index + 1 == prompt_steps_)
    out += openai_token_chunk(meta_, parsed_.logprobs.echo ? echo_text() : std::string(),
                              parsed_.logprobs.echo ? openai_logprobs(true) : nlohmann::json(nullptr),
                              openai_prompt_logprobs());
}

std::string Generation::echo_text() const {
  return parsed_.request.prompt.empty() ? prompt_text_ : parsed_.request.prompt;
}

nlohmann::json Generation::openai_logprobs(bool with_prompt) const {
  const LogprobsRequest& lp = parsed_.logprobs;
  if (!texts_ || lp.top_k < 0) return nullptr;
  std::vector<StepLogprobs> steps;
  if (with_prompt && lp.echo) steps = prompt_lps_;
  if (!(with_prompt && parsed_.stream)) steps.insert(steps.end(), gen_lps_.begin(), gen_lps_.end());
  // The first prompt token has no score but is still a token of the echoed text.
  nlohmann::json j = openai_completion_logprobs(steps, *texts_, lp.top_k, lp.token_ids, 0);
  if (with_prompt && lp.echo && !prompt_lps_.empty() && !parsed_.request.prompt_tokens.empty())
    j["tokens"][0] = texts_->name(parsed_.request.prompt_tokens.front(), lp.token_ids);
  return j;
}

nlohmann::json Generation::openai_prompt_logprobs() const {
  if (!texts_ || !parsed_.logprobs.vllm_prompt) return nullptr;
  return vllm_prompt_logprobs(prompt_lps_, *texts_, parsed_.logprobs.prompt_top_k, parsed_.logprobs.token_ids);
}

nlohmann::json Generation::tgi_details_extra() const {
  const LogprobsRequest& lp = parsed_.logprobs;
  nlohmann::json extra = nlohmann::json::object();
  if (!texts_ || !lp.any()) return extra;
  nlohmann::json tokens = nlohmann::json::array(), tops = nlohmann::json::array();
  for (size_t i = 0; i < gen_tokens_.size(); ++i) {
    const StepLogprobs& s = i < gen_lps_.size() ? gen_lps_[i] : StepLogprobs{};
    tokens.push_back(tgi_token(gen_tokens_[i].token, gen_tokens_[i].text, s, gen_tokens_[i].token == eos_id_));
    if (lp.top_k > 0) tops.push_back(s ? tgi_top_tokens(*s, *texts_, lp.top_k, eos_id_) : nlohmann::json::array());
  }
  if (lp.top_k >= 0) extra["tokens"] = tokens;
  if (lp.top_k > 0) extra["top_tokens"] = tops;
  if (lp.prompt_top_k >= 0 && prompt_steps_ > 0) {
    // TGI's prefill: {id, text, logprob} per prompt token (the first one's logprob null); top_tokens is ours.
    nlohmann::json prefill = nlohmann::json::array();
    const int32_t first = parsed_.request.prompt_tokens.empty() ? 0 : parsed_.request.prompt_tokens.front();
    prefill.push_back(tgi_token(first, texts_->text(first), std::nullopt, false));
    for (size_t i = 1; i < prompt_lps_.size(); ++i) {
      const StepLogprobs& s = prompt_lps_[i];
      const int32_t id = parsed_.request.forced_tokens[i - 1];
      nlohmann::json t = tgi_token(id, texts_->text(id), s, false);
      if (s && lp.prompt_top_k > 0) t["top_tokens"] = tgi_top_tokens(*s, *texts_, lp.prompt_top_k, eos_id_);
      prefill.push_back(std::move(t));
    }
    extra["prefill"] = std::move(prefill);
  }
  return extra;
}

engine::FinishEvent Generation::counted(const engine::FinishEvent& f) const {
  engine::FinishEvent c = f;
  const int scored = std::min(prompt_steps_, c.output_tokens);
  c.output_tokens -= scored;
  c.prompt_tokens += scored;
  return c;
}

void Generation::on_token(const engine::TokenEvent& t, std::string& out) {
  if (!first_) first_ = t.time;
  last_ = t.time;
  ++tokens_;
  text_ += t.text;
  if (parsed_.logprobs.any()) gen_tokens_.push_back(t);
  const StepLogprobs lp = parsed_.logprobs.any() && !gen_lps_.empty() ? gen_lps_.back() : StepLogprobs{};
  if (!parsed_.stream) return;
  if (parsed_.api == Api::kOpenAI) {
    nlohmann::json lps = nullptr;
    if (texts_ && parsed_.logprobs.top_k >= 0)
      lps = openai_completion_logprobs({lp}, *texts_, parsed_.logprobs.top_k, parsed_.logprobs.token_ids, text_.size() - t.text.size());
    out += openai_token_chunk(meta_, t.text, lps);
    return;
  }
  if (parsed_.api == Api::kOpenAIChat) {
    // A token with no text yet (bytes of a character that ends later) has no delta of its own, as in vLLM;
    // its logprobs wait for the next chunk (a chunk's "content" list holds one entry per token it carries).
    if (!t.text.empty()) out += openai_chat_token_chunk(meta_, t.text, take_chat_logprobs());
    return;
  }
  // TGI puts the last token and generated_text in one event. When this token must be the last (the length
  // limit), hold it until the finish event, which the engine sends right after it.
  if (held_) {
    out += tgi_event(*held_, held_lp_);
    held_.reset();
  }
  if (t.index + 1 >= parsed_.request.sampling.max_new_tokens) held_ = t, held_lp_ = lp;
  else out += tgi_event(t, lp);
}

nlohmann::json Generation::chat_logprobs_from(size_t first) const {
  if (!texts_ || parsed_.logprobs.top_k < 0 || first >= gen_lps_.size()) return nullptr;
  const std::vector<StepLogprobs> steps(gen_lps_.begin() + static_cast<std::ptrdiff_t>(first), gen_lps_.end());
  return chat_logprobs(steps, *texts_, parsed_.logprobs.top_k, parsed_.logprobs.token_ids);
}

nlohmann::json Generation::take_chat_logprobs() {
  nlohmann::json j = chat_logprobs_from(chat_lps_sent_);
  chat_lps_sent_ = gen_lps_.size();
  return j;
}

void Generation::on_finish(const engine::FinishEvent& raw, std::string& out) {
  const engine::FinishEvent f = counted(raw);
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
      out += openai_chat_final_chunk(meta_, f, take_chat_logprobs());
      if (parsed_.include_usage) out += openai_usage_chunk(meta_, f);
    }
    out += kOpenAIDone;
    return;
  }
  if (failed) {
    if (held_) out += tgi_event(*held_, held_lp_);
    out += tgi_error_event(why, f.reason == engine::FinishReason::kAborted ? "aborted" : "generation");
  } else {
    TgiFinal fin{(parsed_.return_full_text ? parsed_.request.prompt : std::string()) + text_, parsed_.details,
                 parsed_.request.sampling.seed};
    const int k = parsed_.logprobs.top_k;
    const bool lp = held_ && held_lp_ && k >= 0 && texts_;
    out += tgi_stream_event(held_ ? &*held_ : nullptr, held_ && held_->token == eos_id_, &fin, &f,
                            lp ? std::optional<double>(held_lp_->logprob) : std::nullopt,
                            lp && k > 0 ? tgi_top_tokens(*held_lp_, *texts_, k, eos_id_) : nlohmann::json(nullptr));
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
  if (parsed_.api == Api::kOpenAI)
    return openai_response(meta_, (parsed_.logprobs.echo ? echo_text() : std::string()) + text_, *finish_,
                           openai_logprobs(true), openai_prompt_logprobs());
  if (parsed_.api == Api::kOpenAIChat) return openai_chat_response(meta_, text_, *finish_, chat_logprobs_from(0));
  TgiFinal fin{(parsed_.return_full_text ? parsed_.request.prompt : std::string()) + text_, parsed_.details,
               parsed_.request.sampling.seed, tgi_details_extra()};
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
