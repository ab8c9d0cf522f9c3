#include "logprobs_format.h"

#include <cmath>
#include <cstdio>

namespace server {

using nlohmann::json;

namespace {

// Whole UTF-8 characters only (no overlongs, surrogates or values past U+10FFFF).
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : -1;
    if (n < 0 || i + static_cast<size_t>(n) >= s.size()) return false;  // a bad lead byte, or cut short
    uint32_t cp = n == 0 ? c : n == 1 ? (c & 0x1fu) : n == 2 ? (c & 0x0fu) : (c & 0x07u);
    for (int k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += static_cast<size_t>(n) + 1;
  }
  return true;
}

json number(double x) { return std::isfinite(x) ? json(x) : x < 0 ? json(-9999.0) : json(nullptr); }

json bytes_list(const std::string& b) {
  json a = json::array();
  for (char c : b) a.push_back(static_cast<int>(static_cast<unsigned char>(c)));
  return a;
}

size_t top_count(const engine::TokenLogprobs& lp, int k) { return k <= 0 ? 0 : std::min(lp.top.size(), static_cast<size_t>(k)); }

}  // namespace

TokenTexts::TokenTexts(const engine::Tokenizer& tokenizer) {
  const int n = tokenizer.vocab_size();
  text_.resize(n);
  bytes_.resize(n);
  for (int id = 0; id < n; ++id) {
    bytes_[id] = tokenizer.token_bytes(id);
    if (valid_utf8(bytes_[id])) {
      text_[id] = bytes_[id];
    } else {
      std::string t = "bytes:";
      for (char c : bytes_[id]) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
        t += buf;
      }
      text_[id] = t;
    }
  }
}

const std::string& TokenTexts::text(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < text_.size() ? text_[id] : unknown_;
}
const std::string& TokenTexts::raw_bytes(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < bytes_.size() ? bytes_[id] : unknown_;
}
std::string TokenTexts::name(int32_t id, bool as_token_id) const {
  return as_token_id ? "token_id:" + std::to_string(id) : text(id);
}

json openai_completion_logprobs(const std::vector<StepLogprobs>& steps, const TokenTexts& texts, int k,
                                bool token_ids, size_t offset0) {
  json tokens = json::array(), token_logprobs = json::array(), top = json::array(), offsets = json::array();
  size_t offset = offset0;
  for (const StepLogprobs& s : steps) {
    offsets.push_back(offset);
    if (!s) {  // the first prompt token: a token, no probability
      tokens.push_back(nullptr);
      token_logprobs.push_back(nullptr);
      top.push_back(nullptr);
      continue;
    }
    tokens.push_back(texts.name(s->token, token_ids));
    offset += texts.raw_bytes(s->token).size();
    token_logprobs.push_back(number(s->logprob));
    json t = json::object();
    for (size_t i = 0; i < top_count(*s, k); ++i) t[texts.name(s->top[i].id, token_ids)] = number(s->top[i].logprob);
    top.push_back(std::move(t));
  }
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top}, {"text_offset", offsets}};
}

json vllm_prompt_logprobs(const std::vector<StepLogprobs>& steps, const TokenTexts& texts, int k, bool token_ids) {
  json out = json::array();
  for (const StepLogprobs& s : steps) {
    if (!s) {
      out.push_back(nullptr);
      continue;
    }
    json entry = json::object();
    auto add = [&](int32_t id, double lp, int rank) {
      entry[std::to_string(id)] = {{"logprob", number(lp)}, {"rank", rank}, {"decoded_token", texts.name(id, token_ids)}};
    };
    add(s->token, s->logprob, s->rank);
    for (size_t i = 0; i < top_count(*s, k); ++i) add(s->top[i].id, s->top[i].logprob, static_cast<int>(i) + 1);
    out.push_back(std::move(entry));
  }
  return out;
}

json chat_logprobs(const std::vector<StepLogprobs>& steps, const TokenTexts& texts, int k, bool token_ids) {
  json content = json::array();
  for (const StepLogprobs& s : steps) {
    if (!s) continue;
    json top = json::array();
    for (size_t i = 0; i < top_count(*s, k); ++i)
      top.push_back({{"token", texts.name(s->top[i].id, token_ids)}, {"logprob", number(s->top[i].logprob)},
                     {"bytes", bytes_list(texts.raw_bytes(s->top[i].id))}});
    content.push_back({{"token", texts.name(s->token, token_ids)}, {"logprob", number(s->logprob)},
                       {"bytes", bytes_list(texts.raw_bytes(s->token))}, {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}};
}

json tgi_token(int32_t id, const std::string& text, const StepLogprobs& lp, bool special) {
  return {{"id", id}, {"text", text}, {"logprob", lp ? number(lp->logprob) : json(nullptr)}, {"special", special}};
}

json tgi_top_tokens(const engine::TokenLogprobs& lp, const TokenTexts& texts, int k, int eos_id) {
  json out = json::array();
  for (size_t i = 0; i < top_count(lp, k); ++i) {
    const auto& t = lp.top[i];
    out.push_back({{"id", t.id}, {"text", texts.text(t.id)}, {"logprob", number(t.logprob)}, {"special", t.id == eos_id}});
  }
  return out;
}

}  // namespace server
