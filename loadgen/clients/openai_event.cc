#include "loadgen/clients/openai_event.h"

#include <cstdint>
#include <string>

#include "loadgen/clients/json_scanner.h"

namespace loadgen {

namespace {

using json_scan::Number;
using json_scan::Scanner;

// Keys read more than once would need nlohmann's rule (the last one counts): such chunks go to the DOM.
class Seen {
 public:
  bool first(int bit) {
    const uint32_t b = uint32_t{1} << bit;
    if (bits_ & b) return false;
    bits_ |= b;
    return true;
  }

 private:
  uint32_t bits_ = 0;
};

// int_field of http_api.cc: a non-negative integer that fits int32, else -1 (a float, a string, anything).
bool int_member(Scanner& s, int& out) {
  const char c = s.peek();
  if (c != '-' && !json_scan::is_digit(c)) {
    out = -1;
    return s.skip();
  }
  Number n;
  if (!s.number(n)) return false;
  out = -1;
  if (n.kind == Number::kUnsigned && n.u <= INT32_MAX) out = static_cast<int>(n.u);
  else if (n.kind == Number::kInt && n.i >= 0 && n.i <= INT32_MAX) out = static_cast<int>(n.i);
  return true;
}

// string_member of http_api.cc: a string's text, "" for anything else.
bool string_member(Scanner& s, std::string& out) {
  out.clear();
  if (s.peek() != '"') return s.skip();
  std::string buf;
  std::string_view v;
  if (!s.string(v, buf)) return false;
  out.assign(v.data(), v.size());
  return true;
}

// A chat delta or message: reasoning_content, reasoning, content (decode_chat_text's three members).
struct ChatText {
  std::string reasoning_content, reasoning, content;
  bool read(Scanner& s) {
    Seen seen;
    return s.object([&](std::string_view key) {
      if (key == "reasoning_content") return seen.first(0) && string_member(s, reasoning_content);
      if (key == "reasoning") return seen.first(1) && string_member(s, reasoning);
      if (key == "content") return seen.first(2) && string_member(s, content);
      return s.skip();
    });
  }
};

// choices[0] as decode_openai reads it.
struct Choice {
  bool finished = false;
  std::string finish_reason;
  bool text_is_string = false;
  std::string text;
  bool delta_is_object = false, message_is_object = false, chat = false;
  ChatText delta, message;
  bool has_logprobs = false;
  size_t lp_begin = 0, lp_end = 0;

  bool read(Scanner& s, bool defer) {
    Seen seen;
    return s.object([&](std::string_view key) {
      if (key == "finish_reason") {
        if (!seen.first(0)) return false;
        if (s.peek() != '"') return s.skip();
        finished = true;
        return string_member(s, finish_reason);
      }
      if (key == "text") {
        if (!seen.first(1)) return false;
        text_is_string = s.peek() == '"';
        return string_member(s, text);
      }
      if (key == "delta" || key == "message") {
        const bool is_delta = key == "delta";
        if (!seen.first(is_delta ? 2 : 3)) return false;
        chat = true;
        if (s.peek() != '{') return s.skip();
        (is_delta ? delta_is_object : message_is_object) = true;
        return (is_delta ? delta : message).read(s);
      }
      if (key == "logprobs") {
        if (!seen.first(4)) return false;
        if (s.null_at_cursor()) return s.skip();
        if (!defer) return false;  // logprobs to read here: decode_api_event_scanned's job
        has_logprobs = true;
        lp_begin = s.offset();
        if (!s.pass_container_unchecked()) return false;  // a scalar logprobs: the usual path
        lp_end = s.offset();
        return true;
      }
      if (key == "prompt_logprobs") {
        if (s.peek() == '[') return false;  // kept raw as JSON by the DOM's path
        return s.skip();
      }
      return s.skip();
    });
  }
};

}  // namespace

std::optional<ApiEvent> decode_openai_chunk(std::string_view data, LogprobsJson* deferred) {
  if (deferred) *deferred = {};
  Scanner s(data);
  if (s.peek() != '{') return std::nullopt;  // [DONE], TGI's [{...}], not JSON
  bool openai = false;
  bool has_choice = false;
  Choice choice;
  bool has_usage = false;
  int prompt_tokens = -1, completion_tokens = -1;
  Seen seen;
  const bool ok = s.object([&](std::string_view key) {
    if (key == "choices") {
      openai = true;
      if (!seen.first(0)) return false;
      if (s.peek() != '[') return s.skip();
      return s.array([&](size_t i) {
        if (i != 0 || s.peek() != '{') return s.skip();
        has_choice = true;
        return choice.read(s, deferred != nullptr);
      });
    }
    if (key == "usage") {
      openai = true;
      if (!seen.first(1)) return false;
      if (s.peek() != '{') return s.skip();
      has_usage = true;
      Seen in_usage;
      return s.object([&](std::string_view k) {
        if (k == "prompt_tokens") return in_usage.first(0) && int_member(s, prompt_tokens);
        if (k == "completion_tokens") return in_usage.first(1) && int_member(s, completion_tokens);
        return s.skip();
      });
    }
    if (key == "error") {
      if (s.peek() != 'n') return false;  // an error event: the DOM's text for it
      return s.skip();
    }
    // TGI's keys: not a chunk of ours; stop here rather than read the rest.
    if (key == "token" || key == "generated_text" || key == "details" || key == "top_tokens") return false;
    return s.skip();
  });
  if (!ok || !s.at_end() || !openai) return std::nullopt;
  ApiEvent ev;
  if (has_choice) {
    if (choice.finished) ev.finish_reason = normalise_finish_reason(choice.finish_reason);
    if (choice.text_is_string) {
      set_completion_text(ev, std::move(choice.text), choice.finished);
    } else if (choice.delta_is_object || choice.message_is_object) {
      const ChatText& t = choice.delta_is_object ? choice.delta : choice.message;
      set_chat_text(ev, t.reasoning_content, t.reasoning, t.content);
    }
    if (choice.has_logprobs) {
      deferred->present = true;
      deferred->layout = choice.chat ? LogprobsLayout::kChat : LogprobsLayout::kCompletion;
      deferred->json = data.substr(choice.lp_begin, choice.lp_end - choice.lp_begin);
    }
  }
  if (has_usage) {
    ev.prompt_tokens = prompt_tokens;
    ev.completion_tokens = completion_tokens;
  }
  return ev;
}

}  // namespace loadgen
