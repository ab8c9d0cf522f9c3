#include "loadgen/clients/http_response.h"

#include "engine/tokenizer.h"
#include "loadgen/clients/http_api.h"
#include "loadgen/clients/logprobs_scan.h"
#include "loadgen/clients/openai_event.h"

namespace loadgen {

namespace {
constexpr size_t kMaxRawBody = 64u << 20;   // a non-streamed answer larger than this is not an LLM answer
constexpr size_t kMaxReasonBody = 500;      // how much of an error body goes into the reason

std::string one_line(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) out.push_back(c == '\n' || c == '\r' ? ' ' : c);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (s.size() > max) out += "...";
  return out;
}
}  // namespace

void HttpResponse::expect(const WorkItem& item) {
  want_logprobs_ = item.top_logprobs >= 0;
  score_steps_ = item.score_steps;
  if (score_steps_ > 0) prompt_ids_ = item.prompt_tokens;
  json_logprobs_ = want_logprobs_ && score_steps_ == 0 && callbacks_ != nullptr && callbacks_->takes_logprobs_json(index_);
}

ApiEvent HttpResponse::decode(std::string_view data) {
  deferred_.present = false;
  // An OpenAI chunk in one pass without a DOM (its logprobs, when the callbacks take them as text, passed
  // over and handed on); anything that reader does not take, decoded as before.
  // Logprobs not asked for (a server that sends them anyway) are passed over the same way and dropped: their
  // brackets are matched, their insides not read.
  if (!want_logprobs_ || json_logprobs_) {
    if (std::optional<ApiEvent> ev = decode_openai_chunk(data, &deferred_)) {
      if (!json_logprobs_) deferred_.present = false;
      return std::move(*ev);
    }
  }
  if (!want_logprobs_) return decode_api_event(data);
  // With logprobs asked for, their fields (most of each chunk's bytes) are read without a DOM — or, when the
  // callbacks take them as text, only passed over here and read on their own thread.
  return json_logprobs_ ? decode_api_event_deferring(data, deferred_) : decode_api_event_scanned(data);
}

void HttpResponse::take_logprobs(ApiEvent& ev) {
  if (!want_logprobs_) return;
  if (score_steps_ > 0) {
    for (auto& lp : ev.logprobs) echoed_.push_back(std::move(lp));
    if (ev.prompt_logprobs_by_id) prompt_scores_ = parse_vllm_prompt_logprobs(ev.raw_prompt_logprobs, prompt_ids_);
    else if (!ev.prompt_logprobs.empty()) prompt_scores_ = std::move(ev.prompt_logprobs);
    return;
  }
  for (const auto& lp : ev.logprobs) callbacks_->on_logprobs(index_, logprob_steps_++, lp);
  if (deferred_.present) callbacks_->on_logprobs_json(index_, deferred_.layout, deferred_.json);
}

std::string HttpResponse::report_scores() {
  const size_t p = prompt_ids_.size();
  const size_t first = p - static_cast<size_t>(score_steps_);
  std::vector<const StepLogprobs*> steps;
  if (prompt_scores_.size() >= p) {
    for (size_t i = first; i < p; ++i) {
      if (!prompt_scores_[i]) return "the server's prompt scores have no entry for position " + std::to_string(i);
      steps.push_back(&*prompt_scores_[i]);
    }
  } else if (echoed_.size() >= p) {  // echo: the prompt's tokens lead choices[0].logprobs
    for (size_t i = first; i < p; ++i) steps.push_back(&echoed_[i]);
  } else {
    return "the server returned no prompt scores (vLLM prompt_logprobs, OpenAI echo + logprobs, TGI decoder_input_details)";
  }
  for (size_t s = 0; s < steps.size(); ++s) {
    StepLogprobs lp = *steps[s];
    const int32_t want = prompt_ids_[first + s];
    if (lp.token.id >= 0 && lp.token.id != want)
      return "the server scored token " + std::to_string(lp.token.id) + " at prompt position " + std::to_string(first + s) +
             ", not the " + std::to_string(want) + " sent";
    lp.token.id = want;  // the position's token is the one sent, whatever its text
    callbacks_->on_logprobs(index_, static_cast<int>(s), lp);
  }
  return "";
}

void HttpResponse::on_headers(long http_status, std::string_view content_type) {
  headers_seen_ = true;
  status_ = http_status;
  streamed_ = http_status >= 200 && http_status < 300 &&
              content_type.find("text/event-stream") != std::string_view::npos;
}

void HttpResponse::on_body(std::string_view bytes, Clock::time_point t) {
  if (!streamed_) {
    if (raw_.size() < kMaxRawBody) raw_.append(bytes.substr(0, kMaxRawBody - raw_.size()));
    return;
  }
  sse_.feed(bytes, [&](std::string_view, std::string_view data) { on_event(data, t); });
}

void HttpResponse::on_event(std::string_view data, Clock::time_point t) {
  ApiEvent ev = decode(data);
  if (!ev.error.empty()) {
    if (stream_error_.empty()) stream_error_ = ev.error;
    return;
  }
  take_logprobs(ev);
  if (ev.is_token) {
    // Every token is a chunk at its arrival time, also when its text is empty (a byte of a multi-byte
    // character, or a model whose tokenizer has no text for it): that is what the in-process client
    // reports, so TTFT and ITL mean the same in both.
    if (token_events_++ == 0) first_token_ = ev.reasoning ? FirstToken::kReasoning : FirstToken::kContent;
    text_ += ev.text;
    callbacks_->on_chunk(index_, 1, ev.text, t);
  }
  if (ev.completion_tokens >= 0) usage_completion_ = ev.completion_tokens;
  if (ev.prompt_tokens >= 0) usage_prompt_ = ev.prompt_tokens;
  if (!ev.finish_reason.empty()) finish_reason_ = ev.finish_reason;
  if (ev.done) done_marker_ = true;
}

void HttpResponse::count_tokens(Outcome& out) const {
  out.prompt_tokens = usage_prompt_;
  if (usage_completion_ >= 0) {
    out.output_tokens = usage_completion_;
    out.count_source = TokenCountSource::kUsage;
  } else if (tokenizer_ != nullptr) {
    out.output_tokens = static_cast<int>(tokenizer_->encode(text_, /*add_bos=*/false).size());
    out.count_source = TokenCountSource::kRetokenized;
  } else {
    out.output_tokens = token_events_;
    out.count_source = TokenCountSource::kChunks;
  }
}

Outcome HttpResponse::finish(Clock::time_point t) {
  Outcome out;
  if (status_ < 200 || status_ >= 300) {
    out.status = Status::kFailed;
    out.reason = "HTTP " + std::to_string(status_) + ": " + one_line(raw_, kMaxReasonBody);
    return out;
  }
  if (!streamed_) {
    // A whole JSON answer (a server that does not stream, or ignored "stream": true).
    ApiEvent ev = decode(raw_);
    if (!ev.error.empty()) {
      out.status = Status::kFailed;
      out.reason = "server error: " + one_line(ev.error, kMaxReasonBody);
      return out;
    }
    take_logprobs(ev);
    text_ = ev.has_full_text ? ev.full_text : ev.text;
    usage_completion_ = ev.completion_tokens;
    usage_prompt_ = ev.prompt_tokens;
    finish_reason_ = ev.finish_reason;
    token_events_ = text_.empty() ? 0 : 1;
    if (token_events_ > 0) first_token_ = ev.reasoning ? FirstToken::kReasoning : FirstToken::kContent;
    count_tokens(out);
    if (out.output_tokens > 0) callbacks_->on_chunk(index_, out.output_tokens, text_, t);
    if (score_steps_ > 0 && want_logprobs_) {
      if (std::string why = report_scores(); !why.empty()) {
        out.status = Status::kFailed;
        out.reason = why;
        return out;
      }
    }
  } else {
    sse_.finish([&](std::string_view, std::string_view data) { on_event(data, t); });
    count_tokens(out);
    if (!stream_error_.empty()) {
      out.status = Status::kFailed;
      out.reason = "server error: " + one_line(stream_error_, kMaxReasonBody);
    } else if (sse_.overflowed()) {
      out.status = Status::kFailed;
      out.reason = "malformed stream: an event larger than 16 MiB";
    } else if (token_events_ == 0 && !done_marker_) {
      out.status = Status::kFailed;
      out.reason = "empty stream: no token and no end marker";
    } else if (score_steps_ > 0 && want_logprobs_) {
      if (std::string why = report_scores(); !why.empty()) {
        out.status = Status::kFailed;
        out.reason = why;
      }
    }
  }
  out.finish_reason = finish_reason_;
  out.first_token = first_token_;
  out.text = std::move(text_);
  return out;
}

Outcome HttpResponse::fail(std::string reason) {
  Outcome out;
  count_tokens(out);
  out.status = Status::kFailed;
  out.reason = std::move(reason);
  out.finish_reason = finish_reason_;
  out.first_token = first_token_;
  out.text = std::move(text_);
  return out;
}

}  // namespace loadgen
