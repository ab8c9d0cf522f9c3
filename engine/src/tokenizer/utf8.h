// UTF-8 validation shared by the byte tokenizer's decode and StreamDecoder: complete characters pass through,
// ill-formed bytes become U+FFFD (one per maximal ill-formed subpart, as Python's errors="replace" and the
// Unicode standard recommend), and an incomplete character at the end can be held back for the next token.
#pragma once

#include <string>
#include <string_view>

namespace engine {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

/// Appends the well-formed text of `in` to `out`, ill-formed parts as U+FFFD. Returns how many bytes of `in`
/// were consumed: all of them when `final`; otherwise a trailing prefix of a valid multi-byte character
/// (1-3 bytes) is left unconsumed for the caller to complete with later bytes.
size_t append_valid_utf8(std::string_view in, std::string& out, bool final);

}  // namespace engine
