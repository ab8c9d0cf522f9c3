// A position in one JSON text and the moves every reader of it makes: whitespace, one expected character,
// the end. Shared by the exact logprobs scanner (logprobs_scan.cc) and the locator that only finds where a
// value ends (logprobs_deferred.cc).
#pragma once

#include <cstddef>
#include <string_view>

namespace loadgen {

class JsonCursor {
 public:
  explicit JsonCursor(std::string_view s) : p_(s.data()), begin_(s.data()), end_(s.data() + s.size()) {}

  size_t offset() const { return static_cast<size_t>(p_ - begin_); }
  char peek() {
    ws();
    return p_ < end_ ? *p_ : '\0';
  }
  bool eat(char c) {
    ws();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool at_end() {
    ws();
    return p_ == end_;
  }

 protected:
  static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
  void ws() {
    while (p_ < end_ && is_ws(*p_)) ++p_;
  }

  const char* p_;
  const char* begin_;
  const char* end_;
};

}  // namespace loadgen
