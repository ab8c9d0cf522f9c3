// A strict JSON reader over one text, without a DOM: RFC 8259 as nlohmann's parser takes it (UTF-8 checked, no
// comments, a float that overflows refused), numbers kept as nlohmann keeps them. Used where the DOM cost most:
// the logprobs scanner (logprobs_scan.cc) and the OpenAI chunk decoder (openai_event.cc). Every method returns
// false on input it refuses; the caller then gives the text to the DOM, so errors stay the DOM's.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include "loadgen/clients/json_cursor.h"
#include "loadgen/clients/json_skip.h"

namespace loadgen::json_scan {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
inline constexpr int kMaxDepth = 256;  // deeper than any logprobs field: the scanner leaves it to the DOM

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline void append_utf8(std::string& out, uint32_t cp) {
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

  /// At '{' or '[': past its matching close by quotes and brackets alone (json_skip.h), nothing checked —
  /// for a value another reader checks.
  bool pass_container_unchecked() {
    ws();
    if (p_ >= end_ || (*p_ != '{' && *p_ != '[')) return false;
    const char* e = past_container(p_ + 1, end_);
    if (e == nullptr) return false;
    p_ = e;
    return true;
  }

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

}  // namespace loadgen::json_scan
