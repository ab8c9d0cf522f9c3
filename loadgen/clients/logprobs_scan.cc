#include "loadgen/clients/logprobs_scan.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <forward_list>
#include <limits>
#include <string>

#include "loadgen/clients/http_logprobs.h"
#include "loadgen/clients/json_scanner.h"

namespace loadgen {

namespace {

using namespace json_scan;

// a < b as std::string's operator< orders them (bytes as unsigned char, then length), eight bytes a step:
// a top_logprobs row's keys ("token_id:1234", " the") share long prefixes, and this runs for each pair.
bool key_less(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x, y;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    if (x != y) {
      x = __builtin_bswap64(x);
      y = __builtin_bswap64(y);
      return x < y;
    }
  }
  for (; i < n; ++i) {
    const auto ca = static_cast<unsigned char>(a[i]), cb = static_cast<unsigned char>(b[i]);
    if (ca != cb) return ca < cb;
  }
  return a.size() < b.size();
}

// Strings that must outlive the parse of their object (a top_logprobs row's keys, the tokens): those decoded
// from escapes are copied into nodes that never move; the others view the text.
struct Arena {
  std::forward_list<std::string> strings;
  std::string_view keep(const Scanner& s, std::string_view v) {
    if (s.views_text(v)) return v;
    strings.emplace_front(v);
    return strings.front();
  }
};

// {token, logprob, id?, top_logprobs?} of the content layout; `top` is read only when given (an entry's own
// top_logprobs is not: the DOM's content_entry does not read it).
bool content_entry(Scanner& s, TokenLogprob& out, std::vector<TokenLogprob>* top, bool& top_is_array) {
  std::string tok_buf;
  std::string_view tok;
  bool tok_is_string = false;
  double lp = kNaN;
  bool has_id = false;
  int32_t id = -1;
  top_is_array = false;
  const bool ok = s.object([&](std::string_view key) {
    if (key == "token") {
      tok_is_string = s.peek() == '"';
      if (!tok_is_string) return s.skip();
      return s.string(tok, tok_buf);
    }
    if (key == "logprob") return s.logprob(lp);
    if (key == "id") {
      const char c = s.peek();
      has_id = false;
      if (c == '-' || is_digit(c)) {
        Number n;
        if (!s.number(n)) return false;
        if (n.is_integer()) {
          has_id = true;
          id = n.as_int32();
        }
        return true;
      }
      return s.skip();
    }
    if (top != nullptr && key == "top_logprobs") {
      top->clear();
      top_is_array = s.peek() == '[';
      if (!top_is_array) return s.skip();
      return s.array([&](size_t) {
        if (s.peek() != '{') return s.skip();
        TokenLogprob t;
        bool unused;
        if (!content_entry(s, t, nullptr, unused)) return false;
        top->push_back(std::move(t));
        return true;
      });
    }
    return s.skip();
  });
  if (!ok) return false;
  out = named_token(tok_is_string ? tok : std::string_view(), lp);
  if (has_id) out.id = id;
  return true;
}

// parse_content: an array of entries (anything else: none); entries that are not objects are skipped.
bool content(Scanner& s, std::vector<StepLogprobs>& out) {
  out.clear();
  if (s.peek() != '[') return s.skip();
  return s.array([&](size_t) {
    if (s.peek() != '{') return s.skip();
    StepLogprobs step;
    bool top_is_array;
    if (!content_entry(s, step.token, &step.top, top_is_array)) return false;
    if (!top_is_array) step.top.clear();
    out.push_back(std::move(step));
    return true;
  });
}

// choices[0].logprobs read once for either layout: the chat reading takes only `content`, the completion
// reading `content` when present and the legacy arrays otherwise. Duplicate keys: the last one counts, as in
// nlohmann's object.
struct LogprobsValue {
  struct Token { bool is_string; std::string_view text; };
  struct Entry { std::string_view key; double lp; };
  struct Row { bool is_object; uint32_t begin, end; };

  bool is_object = false;
  bool has_content = false;
  std::vector<StepLogprobs> content_steps;
  bool tokens_is_array = false, lps_is_array = false, top_is_array = false;
  std::vector<Token> tokens;
  std::vector<double> lps;
  std::vector<Row> rows;
  std::vector<Entry> entries;
  Arena arena;

  void reset() {
    is_object = has_content = tokens_is_array = lps_is_array = top_is_array = false;
    content_steps.clear();
    tokens.clear();
    lps.clear();
    rows.clear();
    entries.clear();
    arena.strings.clear();
  }

  bool read(Scanner& s) {
    reset();
    if (s.peek() != '{') return s.skip();
    is_object = true;
    std::string buf;
    return s.object([&](std::string_view key) {
      if (key == "content") {
        has_content = true;
        return content(s, content_steps);
      }
      if (key == "tokens") {
        tokens.clear();
        tokens_is_array = s.peek() == '[';
        if (!tokens_is_array) return s.skip();
        return s.array([&](size_t) {
          if (s.peek() != '"') {
            tokens.push_back({false, {}});
            return s.skip();
          }
          std::string_view v;
          if (!s.string(v, buf)) return false;
          tokens.push_back({true, arena.keep(s, v)});
          return true;
        });
      }
      if (key == "token_logprobs") {
        lps.clear();
        lps_is_array = s.peek() == '[';
        if (!lps_is_array) return s.skip();
        return s.array([&](size_t) {
          double lp;
          if (!s.logprob(lp)) return false;
          lps.push_back(lp);
          return true;
        });
      }
      if (key == "top_logprobs") {
        rows.clear();
        entries.clear();
        top_is_array = s.peek() == '[';
        if (!top_is_array) return s.skip();
        return s.array([&](size_t) {
          const auto begin = static_cast<uint32_t>(entries.size());
          if (s.peek() != '{') {
            rows.push_back({false, begin, begin});
            return s.skip();
          }
          const bool ok = s.object([&](std::string_view text) {
            const std::string_view kept = arena.keep(s, text);
            double lp;
            if (!s.logprob(lp)) return false;
            entries.push_back({kept, lp});
            return true;
          });
          rows.push_back({true, begin, static_cast<uint32_t>(entries.size())});
          return ok;
        });
      }
      return s.skip();
    });
  }

  std::vector<StepLogprobs> chat() {
    if (!is_object || !has_content) return {};
    return std::move(content_steps);
  }

  std::vector<StepLogprobs> completion() {
    std::vector<StepLogprobs> out;
    if (!is_object) return out;
    if (has_content) return std::move(content_steps);
    if (!tokens_is_array || !lps_is_array) return out;
    out.resize(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
      StepLogprobs& step = out[i];
      step.token = named_token(tokens[i].is_string ? tokens[i].text : std::string_view(), i < lps.size() ? lps[i] : kNaN);
      if (top_is_array && i < rows.size() && rows[i].is_object) top_row(rows[i], step.top);
    }
    return out;
  }

 private:
  // One {text: lp} object as the DOM reads it: keys in std::map order (the last of duplicates), then most
  // likely first, stably.
  void top_row(const Row& row, std::vector<TokenLogprob>& top) {
    Entry* b = entries.data() + row.begin;
    Entry* e = entries.data() + row.end;
    bool strictly_ordered = true;
    for (Entry* p = b; p + 1 < e && strictly_ordered; ++p) strictly_ordered = key_less(p->key, (p + 1)->key);
    if (!strictly_ordered) {
      std::stable_sort(b, e, [](const Entry& x, const Entry& y) { return x.key < y.key; });
      // Equal keys are now adjacent in their order in the text: keep the last of each run.
      Entry* out = b;
      for (Entry* p = b; p < e; ++p) {
        if (p + 1 < e && p->key == (p + 1)->key) continue;
        *out++ = *p;
      }
      e = out;
    }
    auto more_likely = [](const Entry& x, const Entry& y) { return x.lp > y.lp; };
    // stable_sort is the identity on a row already in order; with a NaN (not a strict weak order) only the
    // same call gives the same permutation.
    const bool has_nan = std::any_of(b, e, [](const Entry& x) { return x.lp != x.lp; });
    if (has_nan || !std::is_sorted(b, e, more_likely)) std::stable_sort(b, e, more_likely);
    top.reserve(static_cast<size_t>(e - b));
    for (Entry* p = b; p < e; ++p) top.push_back(named_token(p->key, p->lp));
  }
};

// parse_tgi_token_logprobs's top_tokens: tgi_list, an array of {id, text, logprob} (anything else: none).
bool tgi_list(Scanner& s, std::vector<TokenLogprob>& out) {
  out.clear();
  if (s.peek() != '[') return s.skip();
  std::string buf;
  return s.array([&](size_t) {
    if (s.peek() != '{') return s.skip();
    TokenLogprob t;
    t.logprob = kNaN;
    const bool ok = s.object([&](std::string_view key) {
      if (key == "id") {
        const char c = s.peek();
        t.id = -1;
        if (c == '-' || is_digit(c)) {
          Number n;
          if (!s.number(n)) return false;
          if (n.is_integer()) t.id = n.as_int32();
          return true;
        }
        return s.skip();
      }
      if (key == "text") {
        t.text.clear();
        if (s.peek() != '"') return s.skip();
        std::string_view v;
        if (!s.string(v, buf)) return false;
        t.text.assign(v.data(), v.size());
        return true;
      }
      if (key == "logprob") return s.logprob(t.logprob);
      return s.skip();
    });
    if (!ok) return false;
    out.push_back(std::move(t));
    return true;
  });
}

// `data` with the value at [begin, end) replaced by null, in `out` (reused: one allocation per thread, not
// one per chunk).
std::string_view with_null(std::string_view data, size_t begin, size_t end, std::string& out) {
  out.clear();
  out.append(data.substr(0, begin));
  out.append("null");
  out.append(data.substr(end));
  return out;
}

}  // namespace

ApiEvent decode_api_event_without(std::string_view data, size_t begin, size_t end) {
  thread_local std::string buf;
  ApiEvent ev = decode_api_event(with_null(data, begin, end, buf));
  if (ev.error.empty()) return ev;  // (not `?:`, which would copy ev)
  return decode_api_event(data);
}

// One per thread: its vectors keep their room from one value to the next (the dump's writer reads thousands).
std::optional<std::vector<StepLogprobs>> scan_completion_logprobs(std::string_view value) {
  thread_local LogprobsValue v;
  Scanner s(value);
  if (!v.read(s) || !s.at_end()) return std::nullopt;
  return v.completion();
}

std::optional<std::vector<StepLogprobs>> scan_chat_logprobs(std::string_view value) {
  thread_local LogprobsValue v;
  Scanner s(value);
  if (!v.read(s) || !s.at_end()) return std::nullopt;
  return v.chat();
}

std::optional<std::vector<TokenLogprob>> scan_tgi_top_tokens(std::string_view value) {
  Scanner s(value);
  std::vector<TokenLogprob> out;
  if (!tgi_list(s, out) || !s.at_end()) return std::nullopt;
  return out;
}

ApiEvent decode_api_event_scanned(std::string_view data) {
  // The top level once, in order: the value of the last "choices" (its [0].logprobs read on the way) and the
  // last "top_tokens", with their positions; any other value checked and skipped.
  thread_local LogprobsValue lp;
  Scanner s(data);
  if (s.peek() != '{') return decode_api_event(data);  // [DONE], TGI's [{...}], not JSON: the DOM's cases
  bool openai = false;                                  // "choices" or "usage": decode_api_event's dialect test
  bool has_lp = false, chat = false;                    // choices[0] has a non-null logprobs; delta/message
  size_t lp_begin = 0, lp_end = 0;
  bool has_top = false, token_is_object = false, has_token = false;
  size_t top_begin = 0, top_end = 0;
  std::vector<TokenLogprob> top;
  const bool ok = s.object([&](std::string_view key) {
    if (key == "choices") {
      openai = true;
      has_lp = chat = false;
      if (s.peek() != '[') return s.skip();
      return s.array([&](size_t i) {
        if (i != 0 || s.peek() != '{') return s.skip();
        return s.object([&](std::string_view ckey) {
          if (ckey == "delta" || ckey == "message") chat = true;
          if (ckey != "logprobs") return s.skip();
          has_lp = !s.null_at_cursor();
          lp_begin = s.offset();
          if (!lp.read(s)) return false;
          lp_end = s.offset();
          return true;
        });
      });
    }
    if (key == "usage") openai = true;
    if (key == "top_tokens") {
      has_top = true;
      top_begin = s.offset();
      if (!tgi_list(s, top)) return false;
      top_end = s.offset();
      return true;
    }
    if (key == "token") {
      has_token = true;
      token_is_object = s.peek() == '{';
    }
    return s.skip();
  });
  if (!ok || !s.at_end()) return decode_api_event(data);
  // offset() was taken before the value's leading whitespace; the splice keeps that whitespace.
  if (openai) {
    if (!has_lp) return decode_api_event(data);
    std::vector<StepLogprobs> steps = chat ? lp.chat() : lp.completion();
    ApiEvent ev = decode_api_event_without(data, lp_begin, lp_end);
    if (!ev.error.empty()) return ev;
    ev.logprobs = std::move(steps);
    return ev;
  }
  if (!has_top) return decode_api_event(data);
  ApiEvent ev = decode_api_event_without(data, top_begin, top_end);
  if (!ev.error.empty()) return ev;
  // The token's step (when it has a logprob) is the only one: with a "token" key the DOM reads no details.tokens.
  if (has_token && token_is_object && !ev.logprobs.empty()) ev.logprobs[0].top = std::move(top);
  return ev;
}

}  // namespace loadgen
