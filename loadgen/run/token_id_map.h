// Server token strings back to ids, through --tokenizer: a string names an id only when exactly one token's
// bytes are that string (vLLM's "bytes:\xNN" spelling of bytes that are not UTF-8 is read as those bytes).
// Anything else — no token, or several (a byte-fallback piece and a normal piece with the same bytes) — is
// accuracy::kUnmapped: recorded as such, never guessed.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

namespace engine { class Tokenizer; }

namespace loadgen {

class TokenIdMap {
 public:
  TokenIdMap() = default;  ///< no tokenizer: every string is unmapped
  explicit TokenIdMap(const engine::Tokenizer& tokenizer);
  /// The one id whose bytes are `text`, or accuracy::kUnmapped.
  int32_t id(const std::string& text) const;

 private:
  std::unordered_map<std::string, int32_t> ids_;  ///< -2 (kUnmapped) where several ids share the bytes
};

}  // namespace loadgen
