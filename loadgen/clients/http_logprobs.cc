#include "loadgen/clients/http_logprobs.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <string>

#include "loadgen/clients/http_api.h"

namespace loadgen {

using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double lp_value(const json& v) { return v.is_number() ? v.get<double>() : kNaN; }

// {token, logprob, id?, top_logprobs?: [{token, logprob, id?}]} (OpenAI chat, llama.cpp).
TokenLogprob content_entry(const json& e) {
  const auto tok = e.find("token");
  TokenLogprob t = named_token(tok != e.end() && tok->is_string() ? std::string_view(tok->get_ref<const std::string&>())
                                                           : std::string_view(),
                         lp_value(e.value("logprob", json())));
  if (auto id = e.find("id"); id != e.end() && id->is_number_integer()) t.id = id->get<int32_t>();
  return t;
}

std::vector<StepLogprobs> parse_content(const json& content) {
  std::vector<StepLogprobs> out;
  if (!content.is_array()) return out;
  for (const json& e : content) {
    if (!e.is_object()) continue;
    StepLogprobs s;
    s.token = content_entry(e);
    if (auto top = e.find("top_logprobs"); top != e.end() && top->is_array())
      for (const json& t : *top)
        if (t.is_object()) s.top.push_back(content_entry(t));
    out.push_back(std::move(s));
  }
  return out;
}

TokenLogprob tgi_entry(const json& t) {
  TokenLogprob e;
  if (auto id = t.find("id"); id != t.end() && id->is_number_integer()) e.id = id->get<int32_t>();
  if (auto tx = t.find("text"); tx != t.end() && tx->is_string()) e.text = tx->get<std::string>();
  e.logprob = lp_value(t.value("logprob", json()));
  return e;
}

std::vector<TokenLogprob> tgi_list(const json& list) {
  std::vector<TokenLogprob> out;
  if (list.is_array())
    for (const json& t : list)
      if (t.is_object()) out.push_back(tgi_entry(t));
  return out;
}

}  // namespace

// "token_id:123" (vLLM's return_tokens_as_token_ids) names an id (the text is then not kept); anything else
// is text. Parsed in place: with K = 20 this runs 21 times per token.
TokenLogprob named_token(std::string_view text, double lp) {
  TokenLogprob t;
  t.logprob = lp;
  static constexpr std::string_view kPrefix = "token_id:";
  // Digits only (from_chars would take a sign), at most 10 and within int32: the id; anything else is text.
  if (text.size() > kPrefix.size() && text.size() <= kPrefix.size() + 10 && text.starts_with(kPrefix)) {
    int64_t id = 0;
    bool digits = true;
    for (size_t i = kPrefix.size(); i < text.size() && digits; ++i) {
      const unsigned d = static_cast<unsigned char>(text[i]) - unsigned('0');
      digits = d <= 9;
      id = id * 10 + d;
    }
    if (digits && id <= std::numeric_limits<int32_t>::max()) {
      t.id = static_cast<int32_t>(id);
      return t;
    }
  }
  t.text = std::string(text);
  return t;
}

void add_logprobs_request(HttpApi api, int k, json& body) {
  if (k < 0) return;
  if (api == HttpApi::kOpenAI) {
    body["logprobs"] = k;
    body["return_tokens_as_token_ids"] = true;  // vLLM and llm-serve: ids, no string mapping needed
    body["n_probs"] = k;                        // llama.cpp's own name (it ignores what it does not know)
  } else {
    body["parameters"]["details"] = true;
    body["parameters"]["top_n_tokens"] = k;
  }
}

void add_chat_logprobs_request(int k, json& body) {
  if (k < 0) return;
  body["logprobs"] = true;
  body["top_logprobs"] = k;
  body["return_tokens_as_token_ids"] = true;
}

void add_prompt_scoring_request(HttpApi api, int k, json& body) {
  const int kk = std::max(k, 0);
  if (api == HttpApi::kOpenAI) {
    body["prompt_logprobs"] = kk;  // vLLM
    body["echo"] = true;           // the legacy OpenAI way: the prompt's tokens lead choices[0].logprobs
    body["logprobs"] = kk;
    body["return_tokens_as_token_ids"] = true;
    body["max_tokens"] = 1;
  } else {
    body["parameters"]["decoder_input_details"] = true;
    body["parameters"]["details"] = true;
    body["parameters"]["top_n_tokens"] = kk;
    body["parameters"]["max_new_tokens"] = 1;
    body["stream"] = false;
  }
}

std::vector<StepLogprobs> parse_completion_logprobs(const json& lp) {
  std::vector<StepLogprobs> out;
  if (!lp.is_object()) return out;
  if (auto c = lp.find("content"); c != lp.end()) return parse_content(*c);
  auto tokens = lp.find("tokens");
  auto lps = lp.find("token_logprobs");
  if (tokens == lp.end() || !tokens->is_array() || lps == lp.end() || !lps->is_array()) return out;
  auto top = lp.find("top_logprobs");
  for (size_t i = 0; i < tokens->size(); ++i) {
    StepLogprobs s;
    const json& t = (*tokens)[i];
    s.token = named_token(t.is_string() ? std::string_view(t.get_ref<const std::string&>()) : std::string_view(),
                    i < lps->size() ? lp_value((*lps)[i]) : kNaN);
    if (top != lp.end() && top->is_array() && i < top->size() && (*top)[i].is_object()) {
      for (const auto& [text, v] : (*top)[i].items()) s.top.push_back(named_token(text, lp_value(v)));
      // A JSON object has no order: most likely first (ties by name, so the order is reproducible).
      std::stable_sort(s.top.begin(), s.top.end(), [](const TokenLogprob& a, const TokenLogprob& b) {
        return a.logprob > b.logprob;
      });
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<StepLogprobs> parse_chat_logprobs(const json& lp) {
  if (!lp.is_object()) return {};
  auto c = lp.find("content");
  return c == lp.end() ? std::vector<StepLogprobs>{} : parse_content(*c);
}

std::optional<StepLogprobs> parse_tgi_token_logprobs(const json& event) {
  auto t = event.find("token");
  if (t == event.end() || !t->is_object()) return std::nullopt;
  auto lp = t->find("logprob");
  if (lp == t->end() || !lp->is_number()) return std::nullopt;
  StepLogprobs s;
  s.token = tgi_entry(*t);
  if (auto top = event.find("top_tokens"); top != event.end()) s.top = tgi_list(*top);
  return s;
}

std::vector<StepLogprobs> parse_tgi_details_logprobs(const json& details) {
  std::vector<StepLogprobs> out;
  auto tokens = details.find("tokens");
  if (tokens == details.end() || !tokens->is_array()) return out;
  auto tops = details.find("top_tokens");
  for (size_t i = 0; i < tokens->size(); ++i) {
    if (!(*tokens)[i].is_object()) continue;
    StepLogprobs s;
    s.token = tgi_entry((*tokens)[i]);
    if (tops != details.end() && tops->is_array() && i < tops->size()) s.top = tgi_list((*tops)[i]);
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<std::optional<StepLogprobs>> parse_vllm_prompt_logprobs(const json& pl, const std::vector<int32_t>& ids) {
  std::vector<std::optional<StepLogprobs>> out;
  if (!pl.is_array()) return out;
  for (size_t i = 0; i < pl.size(); ++i) {
    const json& e = pl[i];
    if (!e.is_object()) {
      out.emplace_back(std::nullopt);
      continue;
    }
    StepLogprobs s;
    s.token.logprob = kNaN;
    s.token.id = i < ids.size() ? ids[i] : -1;
    struct Ranked { int rank; TokenLogprob t; };
    std::vector<Ranked> ranked;
    for (const auto& [key, v] : e.items()) {
      TokenLogprob t;
      try {
        size_t used = 0;
        t.id = std::stoi(key, &used);
        if (used != key.size()) t.id = -1;
      } catch (const std::exception&) {
        t.id = -1;
      }
      if (!v.is_object()) continue;
      t.logprob = lp_value(v.value("logprob", json()));
      t.text = v.value("decoded_token", std::string());
      const int rank = v.value("rank", 0);
      if (t.id == s.token.id) s.token = t;
      ranked.push_back({rank, t});
    }
    // The scored token is listed with its own rank besides the top-K (ranks 1..K): keep 1..K in rank order.
    std::stable_sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
      return a.t.logprob > b.t.logprob || (a.t.logprob == b.t.logprob && a.rank < b.rank);
    });
    for (const Ranked& r : ranked) s.top.push_back(r.t);
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<std::optional<StepLogprobs>> parse_tgi_prefill(const json& prefill) {
  std::vector<std::optional<StepLogprobs>> out;
  if (!prefill.is_array()) return out;
  for (const json& e : prefill) {
    if (!e.is_object() || !e.value("logprob", json()).is_number()) {
      out.emplace_back(std::nullopt);
      continue;
    }
    StepLogprobs s;
    s.token = tgi_entry(e);
    if (auto top = e.find("top_tokens"); top != e.end()) s.top = tgi_list(*top);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace loadgen
