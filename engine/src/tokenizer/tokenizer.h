// Token ids in, text out: the public Tokenizer (engine/tokenizer.h) and, for the engine's own use, the stream
// decoder that turns generated ids into text deltas.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer.h"

namespace engine {

/// Turns a stream of token ids into text deltas that never split a UTF-8 character.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(tok) {}
  /// Returns the complete characters that token `id` finishes (may be empty).
  std::string push(int32_t id);
  /// Whatever is left (an incomplete character is emitted as U+FFFD).
  std::string flush();

 private:
  const Tokenizer& tok_;
  std::string pending_;  ///< bytes of an unfinished UTF-8 character
};

}  // namespace engine
