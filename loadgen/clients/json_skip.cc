#include "loadgen/clients/json_skip.h"

#include <bit>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace loadgen {

namespace {

/// One bit per byte of a 64-byte block.
struct Masks {
  uint64_t quote = 0, backslash = 0, open = 0, close = 0;
};

// '{' and '[' differ only in bit 0x20, as do '}' and ']': b | 0x20 is 0x7B exactly for the two openers and
// 0x7D for the two closers.
Masks classify(const char* p) {
  Masks m;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), bit = _mm_set1_epi8(0x20),
                open = _mm_set1_epi8(0x7B), close = _mm_set1_epi8(0x7D);
  for (int k = 0; k < 4; ++k) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
    const __m128i folded = _mm_or_si128(v, bit);
    const int shift = 16 * k;
    m.quote |= static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)))) << shift;
    m.backslash |= static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, backslash))))
                   << shift;
    m.open |= static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(folded, open)))) << shift;
    m.close |= static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(folded, close))))
               << shift;
  }
#else
  for (int i = 0; i < 64; ++i) {
    const auto b = static_cast<unsigned char>(p[i]);
    const uint64_t one = uint64_t{1} << i;
    if (b == '"') m.quote |= one;
    if (b == '\\') m.backslash |= one;
    if ((b | 0x20) == 0x7B) m.open |= one;
    if ((b | 0x20) == 0x7D) m.close |= one;
  }
#endif
  return m;
}

// Bit i = the xor of bits 0..i: 1 from an opening quote up to (not including) its closing one.
uint64_t prefix_xor(uint64_t x) {
  x ^= x << 1;
  x ^= x << 2;
  x ^= x << 4;
  x ^= x << 8;
  x ^= x << 16;
  x ^= x << 32;
  return x;
}

// The bytes a backslash takes along, walking the backslashes in order (they are rare: one bit each).
// `carry`: the block's first byte is taken by a backslash that ended the block before; set for the next.
uint64_t escaped_bytes(uint64_t backslash, bool& carry) {
  uint64_t escaped = 0;
  if (carry) {
    escaped = 1;
    backslash &= ~uint64_t{1};  // a backslash taken along escapes nothing
  }
  carry = false;
  while (backslash != 0) {
    const int i = std::countr_zero(backslash);
    if (i == 63) {
      carry = true;
      break;
    }
    escaped |= uint64_t{2} << i;
    backslash &= ~(uint64_t{2} << i);
    backslash &= backslash - 1;
  }
  return escaped;
}

}  // namespace

const char* past_container(const char* p, const char* end) {
  int64_t depth = 1;
  bool in_string = false, carry = false;
  char tail[64];
  while (p < end) {
    const char* block = p;
    const auto left = end - p;
    if (left < 64) {  // the last piece, padded with spaces (which change nothing)
      std::memset(tail, ' ', sizeof tail);
      std::memcpy(tail, p, static_cast<size_t>(left));
      block = tail;
    }
    const Masks m = classify(block);
    const uint64_t escaped = (m.backslash | static_cast<uint64_t>(carry)) != 0 ? escaped_bytes(m.backslash, carry) : 0;
    const uint64_t strings = prefix_xor(m.quote & ~escaped) ^ (in_string ? ~uint64_t{0} : 0);
    in_string = (strings >> 63) != 0;
    const uint64_t open = m.open & ~strings & ~escaped, close = m.close & ~strings & ~escaped;
    // A few brackets a block: walked one by one (a popcount shortcut is a library call without -mpopcnt).
    for (uint64_t s = open | close; s != 0; s &= s - 1) {
      const int i = std::countr_zero(s);
      if ((close >> i) & 1) {
        if (--depth == 0) return p + i + 1;
      } else {
        ++depth;
      }
    }
    p += 64;
  }
  return nullptr;
}

const char* past_container_plain(const char* p, const char* end) {
  int64_t depth = 1;
  bool in_string = false;
  for (; p < end; ++p) {
    const char c = *p;
    if (c == '\\') {
      if (++p == end) return nullptr;
      continue;
    }
    if (c == '"') {
      in_string = !in_string;
    } else if (!in_string && (c == '{' || c == '[')) {
      ++depth;
    } else if (!in_string && (c == '}' || c == ']') && --depth == 0) {
      return p + 1;
    }
  }
  return nullptr;
}

}  // namespace loadgen
