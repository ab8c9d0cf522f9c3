#include "tokenizer/utf8.h"

#include <cstdint>

namespace engine {
namespace {

// For a lead byte: how many continuation bytes follow and the allowed range of the first one (the ranges
// exclude overlong forms, surrogates and code points above U+10FFFF). need < 0: not a valid lead byte.
struct Lead {
  int need;
  uint8_t lo, hi;
};

Lead classify(uint8_t b) {
  if (b < 0x80) return {0, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {1, 0x80, 0xBF};
  if (b == 0xE0) return {2, 0xA0, 0xBF};
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {2, 0x80, 0xBF};
  if (b == 0xED) return {2, 0x80, 0x9F};
  if (b == 0xF0) return {3, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {3, 0x80, 0xBF};
  if (b == 0xF4) return {3, 0x80, 0x8F};
  return {-1, 0, 0};
}

}  // namespace

size_t append_valid_utf8(std::string_view in, std::string& out, bool final) {
  size_t i = 0;
  const size_t n = in.size();
  while (i < n) {
    const auto b = static_cast<uint8_t>(in[i]);
    const Lead lead = classify(b);
    if (lead.need == 0) {
      out += static_cast<char>(b);
      ++i;
      continue;
    }
    if (lead.need < 0) {
      out += kReplacementChar;
      ++i;
      continue;
    }
    // Walk the continuation bytes while they are valid; stop at the first bad one or at the end of input.
    size_t j = i + 1;
    int got = 0;
    while (got < lead.need && j < n) {
      const auto c = static_cast<uint8_t>(in[j]);
      const bool ok = got == 0 ? (c >= lead.lo && c <= lead.hi) : (c >= 0x80 && c <= 0xBF);
      if (!ok) break;
      ++j;
      ++got;
    }
    if (got == lead.need) {
      out.append(in.substr(i, j - i));
    } else if (j == n && !final) {
      return i;  // a valid beginning of a character whose remaining bytes have not arrived yet
    } else {
      out += kReplacementChar;  // the maximal valid prefix i..j-1 stands for one replacement character
    }
    i = j;
  }
  return n;
}

}  // namespace engine
