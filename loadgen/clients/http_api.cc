#include "loadgen/clients/http_api.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace loadgen {

using nlohmann::json;

std::string normalise_finish_reason(const std::string& r) {
  if (r == "eos_token") return "eos";
  if (r == "stop_sequence") return "stop";
  return r;
}

void set_completion_text(ApiEvent& ev, std::string text, bool finished) {
  ev.text = std::move(text);
  // A completion chunk is a token when it has text, or when it is a mid-stream chunk (an empty text delta is a
  // token whose bytes finish a character later). The closing chunk with finish_reason and empty text is not.
  ev.is_token = !ev.text.empty() || !finished;
}

void set_chat_text(ApiEvent& ev, const std::string& reasoning_content, const std::string& reasoning,
                   const std::string& content) {
  // A chat delta (streamed) or message (whole answer): a token only when it carries text of its own.
  const std::string& r = reasoning_content.empty() ? reasoning : reasoning_content;
  ev.text = r + content;
  ev.is_token = !ev.text.empty();
  ev.reasoning = content.empty() && !r.empty();
}

std::string request_path(HttpApi api, const std::string& model_name) {
  switch (api) {
    case HttpApi::kOpenAI: return "/v1/completions";
    case HttpApi::kOpenAIChat: return "/v1/chat/completions";
    case HttpApi::kTgi: return "/generate_stream";
    case HttpApi::kLlmServing: return "/models/" + model_name + "/generate";
  }
  return "/";
}

std::string request_path(HttpApi api, const std::string& model_name, const WorkItem& item) {
  if (api == HttpApi::kTgi && item.score_steps > 0) return "/generate";
  return request_path(api, model_name);
}

namespace {

// TGI-style "parameters": TGI rejects temperature <= 0 and top_p >= 1, so greedy is do_sample=false with
// neither field, and sampling knobs are sent only when they are on.
json tgi_parameters(const WorkItem& item) {
  json p = json::object();
  p["max_new_tokens"] = item.max_new_tokens;
  const bool sample = item.temperature > 0.0f;
  p["do_sample"] = sample;
  if (sample) {
    p["temperature"] = item.temperature;
    if (item.top_k > 0) p["top_k"] = item.top_k;
    if (item.top_p > 0.0f && item.top_p < 1.0f) p["top_p"] = item.top_p;
  }
  p["seed"] = item.seed;
  p["details"] = true;  // the last event then carries generated_tokens: the server's own count
  if (item.ignore_eos) p["ignore_eos"] = true;
  return p;
}

int int_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return -1;
  const int64_t v = it->get<int64_t>();
  return v < 0 || v > INT32_MAX ? -1 : static_cast<int>(v);
}

std::string error_text(const json& err) {
  if (err.is_string()) return err.get<std::string>();
  if (err.is_object()) {
    auto m = err.find("message");
    if (m != err.end() && m->is_string()) return m->get<std::string>();
  }
  return err.dump();
}

std::string string_member(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void decode_chat_text(const json& d, ApiEvent& ev) {
  set_chat_text(ev, string_member(d, "reasoning_content"), string_member(d, "reasoning"), string_member(d, "content"));
}

void decode_openai(const json& j, ApiEvent& ev) {
  auto choices = j.find("choices");
  if (choices != j.end() && choices->is_array() && !choices->empty() && (*choices)[0].is_object()) {
    const json& c = (*choices)[0];
    bool finished = false;
    if (auto f = c.find("finish_reason"); f != c.end() && f->is_string()) {
      ev.finish_reason = normalise_finish_reason(f->get<std::string>());
      finished = true;
    }
    if (auto t = c.find("text"); t != c.end() && t->is_string()) {
      set_completion_text(ev, t->get<std::string>(), finished);
    } else if (auto d = c.find("delta"); d != c.end() && d->is_object()) {
      decode_chat_text(*d, ev);
    } else if (auto m = c.find("message"); m != c.end() && m->is_object()) {
      decode_chat_text(*m, ev);
    }
    if (auto lp = c.find("logprobs"); lp != c.end() && !lp->is_null())
      ev.logprobs = c.contains("delta") || c.contains("message") ? parse_chat_logprobs(*lp) : parse_completion_logprobs(*lp);
    if (auto pl = c.find("prompt_logprobs"); pl != c.end() && pl->is_array()) {
      ev.prompt_logprobs_by_id = true;
      ev.raw_prompt_logprobs = *pl;
    }
  }
  if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
    ev.prompt_tokens = int_field(*u, "prompt_tokens");
    ev.completion_tokens = int_field(*u, "completion_tokens");
  }
}

void decode_tgi(const json& j, ApiEvent& ev) {
  if (auto lp = parse_tgi_token_logprobs(j)) ev.logprobs.push_back(std::move(*lp));
  if (auto t = j.find("token"); t != j.end() && t->is_object()) {
    ev.is_token = true;
    auto sp = t->find("special");
    const bool special = sp != t->end() && sp->is_boolean() && sp->get<bool>();
    if (auto tx = t->find("text"); !special && tx != t->end() && tx->is_string()) ev.text = tx->get<std::string>();
  }
  if (auto g = j.find("generated_text"); g != j.end() && g->is_string()) {
    ev.done = true;
    ev.has_full_text = true;
    ev.full_text = g->get<std::string>();
  }
  if (auto d = j.find("details"); d != j.end() && d->is_object()) {
    if (auto f = d->find("finish_reason"); f != d->end() && f->is_string())
      ev.finish_reason = normalise_finish_reason(f->get<std::string>());
    ev.completion_tokens = int_field(*d, "generated_tokens");
    ev.prompt_tokens = int_field(*d, "prompt_tokens");  // our server's addition; absent from TGI itself
    // A non-streamed answer's tokens (a stream's final event carries none: its tokens came one by one).
    if (!j.contains("token")) ev.logprobs = parse_tgi_details_logprobs(*d);
    if (auto pf = d->find("prefill"); pf != d->end()) ev.prompt_logprobs = parse_tgi_prefill(*pf);
  }
}

}  // namespace

std::vector<ChatMessage> chat_messages(const WorkItem& item) {
  if (!item.messages.empty()) return item.messages;
  return {ChatMessage{"user", item.prompt}};
}

namespace {

// The sampling fields /v1/completions and /v1/chat/completions share (vLLM's extensions top_k, ignore_eos).
void openai_sampling(const WorkItem& item, json& body) {
  body["temperature"] = item.temperature;
  if (item.top_p > 0.0f && item.top_p < 1.0f) body["top_p"] = item.top_p;
  if (item.top_k > 0) body["top_k"] = item.top_k;
  body["seed"] = item.seed;
  if (item.ignore_eos) body["ignore_eos"] = true;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};  // usage in a last chunk (no choices)
}

}  // namespace

std::string request_body(HttpApi api, const std::string& model_name, const WorkItem& item) {
  json body;
  if (api == HttpApi::kOpenAIChat) {
    body["model"] = model_name;
    json messages = json::array();
    for (const ChatMessage& m : chat_messages(item)) messages.push_back({{"role", m.role}, {"content", m.content}});
    body["messages"] = std::move(messages);
    // max_completion_tokens is the current name; max_tokens the one older servers (and llama.cpp) read.
    body["max_completion_tokens"] = item.max_new_tokens;
    body["max_tokens"] = item.max_new_tokens;
    openai_sampling(item, body);
    add_chat_logprobs_request(item.top_logprobs, body);
  } else if (api == HttpApi::kOpenAI) {
    body["model"] = model_name;
    body["prompt"] = item.prompt;
    body["max_tokens"] = item.max_new_tokens;
    openai_sampling(item, body);
    add_logprobs_request(api, item.top_logprobs, body);
    if (item.prompt_as_ids && !item.prompt_tokens.empty()) body["prompt"] = item.prompt_tokens;
    if (item.score_steps > 0) {
      body["prompt"] = item.prompt_tokens;  // BASE's exact ids: no re-tokenizing on the server
      add_prompt_scoring_request(api, item.top_logprobs, body);
    }
  } else {
    body["inputs"] = item.prompt;
    body["parameters"] = tgi_parameters(item);
    body["stream"] = true;  // /generate_stream ignores it; /models/<name>/generate needs it
    add_logprobs_request(api, item.top_logprobs, body);
    if (item.score_steps > 0) {
      body["inputs"] = item.prompt_tokens;  // llm-serve takes ids; TGI itself takes text only (it then answers 422)
      add_prompt_scoring_request(api, item.top_logprobs, body);
    }
  }
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

ApiEvent decode_api_event(std::string_view data) {
  ApiEvent ev;
  std::string_view trimmed = data;
  while (!trimmed.empty() && (trimmed.back() == ' ' || trimmed.back() == '\n' || trimmed.back() == '\r'))
    trimmed.remove_suffix(1);
  while (!trimmed.empty() && (trimmed.front() == ' ' || trimmed.front() == '\n')) trimmed.remove_prefix(1);
  if (trimmed == "[DONE]") {
    ev.done = true;
    return ev;
  }
  json j = json::parse(trimmed, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    ev.error = "malformed event: " + std::string(trimmed.substr(0, 200));
    return ev;
  }
  if (j.is_array() && !j.empty()) j = j[0];  // TGI's non-streamed "/" route answers [{generated_text}]
  if (!j.is_object()) {
    ev.error = "unexpected event: " + std::string(trimmed.substr(0, 200));
    return ev;
  }
  if (auto e = j.find("error"); e != j.end() && !e->is_null()) {
    ev.error = error_text(*e);
    return ev;
  }
  if (j.contains("choices") || j.contains("usage")) {
    decode_openai(j, ev);
  } else {
    decode_tgi(j, ev);
  }
  return ev;
}

}  // namespace loadgen
