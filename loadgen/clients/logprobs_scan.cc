#include "loadgen/clients/logprobs_scan.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <forward_list>
#include <limits>
#include <string>

#include "loadgen/clients/http_logprobs.h"
#include "loadgen/clients/json_cursor.h"

namespace loadgen {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kMaxDepth = 256;  // deeper than any logprobs field: the scanner leaves it to the DOM

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A JSON number as nlohmann keeps it: an integer token is int64 (negative) or uint64, unless it does not fit,
// when it is read as a double like a token with a fraction or an exponent.
struct Number {
  enum Kind { kInt, kUnsigned, kFloat } kind = kFloat;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  double as_double() const {
    return kind == kInt ? static_cast<double>(i) : kind == kUnsigned ? static_cast<double>(u) : d;
  }
  bool is_integer() const { return kind != kFloat; }
  int32_t as_int32() const { return kind == kInt ? static_cast<int32_t>(i) : static_cast<int32_t>(u); }
};

// A strict JSON reader over one text (RFC 8259 as nlohmann's parser takes it: UTF-8 checked, no comments, a
// float that overflows refused). Every method returns false on input it refuses; the caller then gives up.
class Scanner : public JsonCursor {
 public:
  using JsonCursor::JsonCursor;

  /// Whether `v` views the text itself (a string without escapes), not a decoding buffer.
  bool views_text(std::string_view v) const { return v.data() >= begin_ && v.data() <= end_; }

  /// A string at the cursor: `out` views its bytes, or `buf` when it had escapes (decoded there).
  bool string(std::string_view& out, std::string& buf) {
    if (!eat('"')) return false;
    const char* start = p_;
    bool escaped = false;
    for (;;) {
      skip_plain_ascii();
      if (p_ >= end_) return false;
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') break;
      if (c == '\\') {
        escaped = true;
        if (!check_escape()) return false;
      } else if (c < 0x20) {
        return false;
      } else if (c < 0x80) {
        ++p_;
      } else if (!check_utf8()) {
        return false;
      }
    }
    const char* stop = p_++;
    if (!escaped) {
      out = std::string_view(start, static_cast<size_t>(stop - start));
      return true;
    }
    decode(start, stop, buf);
    out = buf;
    return true;
  }

  bool number(Number& n) {
    ws();
    const char* s = p_;
    if (p_ < end_ && *p_ == '-') ++p_;
    if (p_ >= end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ < end_ && is_digit(*p_)) ++p_;
    } else {
      return false;
    }
    bool is_float = false;
    if (p_ < end_ && *p_ == '.') {
      is_float = true;
      ++p_;
      if (p_ >= end_ || !is_digit(*p_)) return false;
      while (p_ < end_ && is_digit(*p_)) ++p_;
    }
    bool has_exponent = false;
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      is_float = has_exponent = true;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ >= end_ || !is_digit(*p_)) return false;
      while (p_ < end_ && is_digit(*p_)) ++p_;
    }
    if (!is_float) {
      if (*s == '-') {
        const auto [e, ec] = std::from_chars(s, p_, n.i);
        if (ec == std::errc() && e == p_) {
          n.kind = Number::kInt;
          return true;
        }
      } else {
        const auto [e, ec] = std::from_chars(s, p_, n.u);
        if (ec == std::errc() && e == p_) {
          n.kind = Number::kUnsigned;
          return true;
        }
      }
    }
    // A short plain decimal (a logprob as servers print it, "-0.4700"): its digits as an integer m < 2^53 and
    // the power of ten it is divided by (<= 10^22) are both exact doubles, so the one division is the correctly
    // rounded value (Clinger's fast path), the double strtod and from_chars give, at a fraction of the cost.
    if (is_float && !has_exponent && fast_decimal(s, p_, n.d)) {
      n.kind = Number::kFloat;
      return true;
    }
    // nlohmann reads it with strtod and refuses a result that is not finite; from_chars rounds the same way
    // (both correctly) and reports overflow and underflow, which are then left to the DOM.
    const auto [e, ec] = std::from_chars(s, p_, n.d);
    if (ec != std::errc() || e != p_) return false;
    n.kind = Number::kFloat;
    return true;
  }

  /// Any value, checked and dropped.
  bool skip(int depth = 0) {
    switch (peek()) {
      case '"': {
        std::string_view v;
        return string(v, scratch_);
      }
      case '{': {
        if (++depth > kMaxDepth) return false;
        ++p_;
        if (eat('}')) return true;
        do {
          std::string_view k;
          if (!string(k, scratch_) || !eat(':') || !skip(depth)) return false;
        } while (eat(','));
        return eat('}');
      }
      case '[': {
        if (++depth > kMaxDepth) return false;
        ++p_;
        if (eat(']')) return true;
        do {
          if (!skip(depth)) return false;
        } while (eat(','));
        return eat(']');
      }
      case 't': return literal("true");
      case 'f': return literal("false");
      case 'n': return literal("null");
      default: {
        Number n;
        return number(n);
      }
    }
  }

  bool null_at_cursor() { return peek() == 'n'; }

  /// A value read as nlohmann's lp_value reads it: a number's value, NaN for anything else.
  bool logprob(double& lp) {
    const char c = peek();
    if (c == '-' || is_digit(c)) {
      Number n;
      if (!number(n)) return false;
      lp = n.as_double();
      return true;
    }
    lp = kNaN;
    return skip();
  }

  /// The members of an object at the cursor: `member(key)` reads each value (it must consume it).
  template <typename F>
  bool object(F&& member) {
    if (!eat('{')) return false;
    if (eat('}')) return true;
    std::string key_buf;
    do {
      std::string_view key;
      if (!string(key, key_buf) || !eat(':') || !member(key)) return false;
    } while (eat(','));
    return eat('}');
  }

  /// The elements of an array at the cursor: `element(i)` reads each.
  template <typename F>
  bool array(F&& element) {
    if (!eat('[')) return false;
    if (eat(']')) return true;
    size_t i = 0;
    do {
      if (!element(i++)) return false;
    } while (eat(','));
    return eat(']');
  }

 private:
  // [s, e): -?digits.digits (checked). False when it has more than 15 digits in all (m could pass 2^53).
  static bool fast_decimal(const char* s, const char* e, double& out) {
    static constexpr double kPow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13,
                                        1e14, 1e15};
    const bool negative = *s == '-';
    if (negative) ++s;
    if (e - s > 16) return false;  // 15 digits and the point
    uint64_t m = 0;
    int frac = -1;  // digits after the point; -1 before it
    for (const char* p = s; p < e; ++p) {
      if (*p == '.') {
        frac = 0;
        continue;
      }
      m = m * 10 + static_cast<uint64_t>(*p - '0');
      if (frac >= 0) ++frac;
    }
    const double v = static_cast<double>(m) / kPow10[frac];
    out = negative ? -v : v;
    return true;
  }

  // Inside a string: past the bytes that need no check (0x20-0x7F but '"' and '\\'), eight at a time. A
  // word with any other byte stops it before that word; the byte loop of string() takes it from there.
  void skip_plain_ascii() {
    constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
    auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
    while (end_ - p_ >= 8) {
      uint64_t x;
      std::memcpy(&x, p_, 8);
      const uint64_t special = has_zero(x ^ (kOnes * '"')) | has_zero(x ^ (kOnes * '\\')) |
                               ((x - kOnes * 0x20) & ~x & kHigh) | (x & kHigh);
      if (special != 0) return;
      p_ += 8;
    }
  }

  bool literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) return false;
    p_ += word.size();
    return true;
  }

  bool read_hex4(uint32_t& cp) {
    if (end_ - p_ < 4) return false;
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = hex_value(p_[i]);
      if (h < 0) return false;
      cp = (cp << 4) | static_cast<uint32_t>(h);
    }
    p_ += 4;
    return true;
  }

  // At '\\': one escape (a \u high surrogate with its low one), checked as nlohmann's lexer checks it.
  bool check_escape() {
    ++p_;
    if (p_ >= end_) return false;
    const char c = *p_++;
    switch (c) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't': return true;
      case 'u': {
        uint32_t cp;
        if (!read_hex4(cp)) return false;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
          p_ += 2;
          uint32_t lo;
          if (!read_hex4(lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
        }
        return true;
      }
      default: return false;
    }
  }

  // At a byte >= 0x80: one UTF-8 sequence, well-formed per RFC 3629 (no overlong forms, no surrogates).
  bool check_utf8() {
    const auto b0 = static_cast<unsigned char>(*p_);
    int n;
    unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      n = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      n = 3;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      n = 4;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (end_ - p_ < n) return false;
    const auto b1 = static_cast<unsigned char>(p_[1]);
    if (b1 < lo || b1 > hi) return false;
    for (int i = 2; i < n; ++i) {
      const auto b = static_cast<unsigned char>(p_[i]);
      if (b < 0x80 || b > 0xBF) return false;
    }
    p_ += n;
    return true;
  }

  // The checked bytes between the quotes, escapes decoded.
  static void decode(const char* s, const char* e, std::string& out) {
    out.clear();
    while (s < e) {
      if (*s != '\\') {
        out.push_back(*s++);
        continue;
      }
      const char c = s[1];
      s += 2;
      switch (c) {
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          for (int i = 0; i < 4; ++i) cp = (cp << 4) | static_cast<uint32_t>(hex_value(s[i]));
          s += 4;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo = 0;
            for (int i = 0; i < 4; ++i) lo = (lo << 4) | static_cast<uint32_t>(hex_value(s[2 + i]));
            s += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: out.push_back(c); break;  // " \ /
      }
    }
  }

  std::string scratch_;  // skipped strings' escapes
};

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

// `data` with the value at [begin, end) replaced by null.
std::string with_null(std::string_view data, size_t begin, size_t end) {
  std::string out;
  out.reserve(data.size() - (end - begin) + 4);
  out.append(data.substr(0, begin));
  out.append("null");
  out.append(data.substr(end));
  return out;
}

}  // namespace

ApiEvent decode_api_event_without(std::string_view data, size_t begin, size_t end) {
  ApiEvent ev = decode_api_event(with_null(data, begin, end));
  return ev.error.empty() ? ev : decode_api_event(data);
}

std::optional<std::vector<StepLogprobs>> scan_completion_logprobs(std::string_view value) {
  Scanner s(value);
  LogprobsValue v;
  if (!v.read(s) || !s.at_end()) return std::nullopt;
  return v.completion();
}

std::optional<std::vector<StepLogprobs>> scan_chat_logprobs(std::string_view value) {
  Scanner s(value);
  LogprobsValue v;
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
