#include "loadgen/clients/logprobs_deferred.h"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "loadgen/clients/http_logprobs.h"
#include "loadgen/clients/json_cursor.h"
#include "loadgen/clients/json_skip.h"
#include "loadgen/clients/logprobs_scan.h"

namespace loadgen {

namespace {

// Where an OpenAI event's choices[0].logprobs lies, found by quotes and brackets alone: nothing is checked,
// because decode_api_event then reads the event with that value as null (the DOM checks all of the rest) and
// the value itself is checked by whoever reads it. One table lookup per byte.
class Locator : public JsonCursor {
 public:
  using JsonCursor::JsonCursor;

  bool openai = false, has_lp = false, chat = false;
  size_t lp_begin = 0, lp_end = 0;

  /// False where the text is not an object of members as far as quotes and brackets tell.
  bool run() {
    if (!eat('{')) return false;
    if (eat('}')) return at_end();
    do {
      std::string_view key;
      if (!key_string(key) || !eat(':')) return false;
      if (key == "choices") {
        openai = true;
        has_lp = chat = false;
        if (!choices()) return false;
      } else {
        if (key == "usage") openai = true;
        if (!skip()) return false;
      }
    } while (eat(','));
    return eat('}') && at_end();
  }

 private:
  /// Bytes that end a scalar (a number, true, false, null).
  static constexpr std::array<bool, 256> kEndsScalar = [] {
    std::array<bool, 256> t{};
    for (unsigned char c : std::string_view("\"{}[],: \t\n\r")) t[c] = true;
    return t;
  }();

  // p just past a string's opening quote: past its closing quote (a backslash takes the byte after it along),
  // or null where the text ends first. On locals: a store to p_ would be reloaded after every byte read.
  // (Keys and string values: short. Containers go to past_container.)
  static const char* past_string(const char* p, const char* end) {
    for (;;) {
      while (p < end && *p != '"' && *p != '\\') ++p;
      if (p >= end) return nullptr;
      if (*p++ == '"') return p;
      if (p++ >= end) return nullptr;
    }
  }

  // At '"': past the string.
  bool pass_string() {
    const char* p = past_string(p_ + 1, end_);
    if (p == nullptr) return false;
    p_ = p;
    return true;
  }

  // A key: its bytes, or — with an escape, which could spell any name ("d\\u0065lta"; servers do not send
  // them) — its decoded text. False where that is not a JSON string.
  bool key_string(std::string_view& key) {
    ws();
    if (p_ >= end_ || *p_ != '"') return false;
    const char* start = p_;
    if (!pass_string()) return false;
    key = std::string_view(start + 1, static_cast<size_t>(p_ - 2 - start));
    if (key.find('\\') == std::string_view::npos) return true;
    const nlohmann::json j = nlohmann::json::parse(start, p_, nullptr, /*allow_exceptions=*/false);
    if (!j.is_string()) return false;
    key_buf_ = j.get<std::string>();
    key = key_buf_;
    return true;
  }

  // Any value: a string, a container up to its matching close (json_skip.h: 64 bytes a step), or a scalar
  // up to the next , : } ] or space.
  bool skip() {
    ws();
    if (p_ >= end_) return false;
    const char c = *p_;
    if (c == '"') return pass_string();
    if (c == '{' || c == '[') {
      const char* p = past_container(p_ + 1, end_);
      if (p == nullptr) return false;
      p_ = p;
      return true;
    }
    const char* p = p_;
    while (p < end_ && !kEndsScalar[static_cast<unsigned char>(*p)]) ++p;
    const bool any = p > p_;
    p_ = p;
    return any;
  }

  // The value of "choices": in its first element (an object), "delta"/"message" and the last "logprobs".
  bool choices() {
    if (peek() != '[') return skip();
    ++p_;
    if (eat(']')) return true;
    if (peek() == '{') {
      ++p_;
      if (!eat('}')) {
        do {
          std::string_view key;
          if (!key_string(key) || !eat(':')) return false;
          if (key == "delta" || key == "message") chat = true;
          if (key == "logprobs") {
            has_lp = peek() != 'n';
            lp_begin = offset();
            if (!skip()) return false;
            lp_end = offset();
          } else if (!skip()) {
            return false;
          }
        } while (eat(','));
        if (!eat('}')) return false;
      }
    } else if (!skip()) {
      return false;
    }
    while (eat(','))
      if (!skip()) return false;
    return eat(']');
  }

  std::string key_buf_;
};

}  // namespace

ApiEvent decode_api_event_deferring(std::string_view data, LogprobsJson& deferred) {
  deferred = {};
  Locator at(data);
  if (!at.run()) return decode_api_event_scanned(data);  // not an object as far as brackets go: the DOM's case
  if (!at.openai) return decode_api_event_scanned(data);  // TGI: its top_tokens are read here
  if (!at.has_lp) return decode_api_event(data);
  ApiEvent ev = decode_api_event_without(data, at.lp_begin, at.lp_end);
  if (!ev.error.empty()) return ev;
  deferred.layout = at.chat ? LogprobsLayout::kChat : LogprobsLayout::kCompletion;
  deferred.json = data.substr(at.lp_begin, at.lp_end - at.lp_begin);
  deferred.present = true;
  return ev;
}

std::optional<std::vector<StepLogprobs>> read_logprobs_json(LogprobsLayout layout, std::string_view json,
                                                            std::string& error) {
  auto steps = layout == LogprobsLayout::kChat ? scan_chat_logprobs(json) : scan_completion_logprobs(json);
  if (steps) return steps;
  // What the scanner leaves to the DOM (a number from_chars does not give as nlohmann does, deep nesting).
  const nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    const size_t first = json.find_first_not_of(" \t\n\r");
    const std::string_view head = first == std::string_view::npos ? std::string_view() : json.substr(first);
    error = "malformed logprobs: " + std::string(head.substr(0, 200));
    return std::nullopt;
  }
  return layout == LogprobsLayout::kChat ? parse_chat_logprobs(j) : parse_completion_logprobs(j);
}

}  // namespace loadgen
